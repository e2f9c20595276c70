/** Small process and log-file helpers shared by the embedded servers and the dev supervisor. */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The node arguments that run `script` (a TypeScript path relative to `base`, the caller's import.meta.url)
 * as a process of its own. From the sources (base ends in .ts: development, tests) that is the .ts file
 * through tsx, resolved from this package, not from the working directory, which need not have it; from
 * the compiled package (dist/, where tsx is not installed) it is the compiled .js beside the caller.
 */
export function nodeScriptArgv(base: string, script: string): string[] {
  if (base.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(base).resolve('tsx')).href;
    return ['--import', tsx, fileURLToPath(new URL(script, base))];
  }
  return [fileURLToPath(new URL(script.replace(/\.ts$/, '.js'), base))];
}

/**
 * True while `pid` runs. A zombie (exited, not yet reaped by its parent, which
 * for the detached supervisor is init and may reap late) counts as gone.
 */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    // "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses, the state follows the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false; // exited between the two checks
  }
}

/** What a log file gained since `fromOffset`, at most its last `maxBytes`. */
export async function readLogSince(file: string, fromOffset: number, maxBytes = 256 * 1024): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.max(fromOffset, size - maxBytes);
    const buf = Buffer.alloc(Math.max(0, size - start));
    await handle.read(buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    await handle.close();
  }
}
