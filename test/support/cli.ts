/**
 * Running the real `winnow` command from tests, as a user would: from the TypeScript sources
 * (scripts/winnow-src.mjs, through tsx), so a test never runs a stale dist/. The compiled CLI that installs
 * ship (bin/winnow.mjs, dist/) is run by test/integration/pack.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../scripts/winnow-src.mjs', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`winnow ${args.join(' ')} timed out after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A daemon's log: its JSON lines, parsed, and any line that is not JSON. */
export interface LogLine {
  msg: string;
  level: string;
  time: string;
  [k: string]: unknown;
}

export function logLines(text: string): { lines: LogLine[]; other: string[] } {
  const lines: LogLine[] = [];
  const other: string[] = [];
  for (const l of text.split('\n')) {
    if (l === '') continue;
    try {
      lines.push(JSON.parse(l) as LogLine);
    } catch {
      other.push(l);
    }
  }
  return { lines, other };
}

export interface Daemon {
  child: ChildProcess;
  api: string;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `winnow run` on a free port; resolves once its API listens. */
export function startDaemon(configFile: string, env: Record<string, string> = {}): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'run', '--config', configFile, '--port', '0'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    let api: string | undefined;
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      logs += d.toString();
      if (!api) {
        const m = /"api":"(http:\/\/[^"]+)"/.exec(logs);
        if (m?.[1]) {
          api = m[1];
          resolve({
            child,
            api,
            logs: () => logs,
            stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
              if (child.exitCode === null) child.kill(signal);
              return exited;
            },
          });
        }
      }
    });
    void exited.then((code) => {
      if (!api) reject(new Error(`winnow run exited (${code}) before serving its API:\n${logs}`));
    });
  });
}
