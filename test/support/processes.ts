/**
 * Processes seen from a test, by pid and through /proc (Linux): is a pid
 * alive, wait until it is gone, which processes mention a text, a process's
 * descendants. Tests that start servers or daemons use them to prove that
 * nothing is left behind, and never kill anything by name.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** process.kill(pid, 0) says the process exists (a zombie not yet reaped by init included). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits until no process has this pid any more (init may reap a detached process's zombie late). */
export async function waitGone(pid: number, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

function procEntries(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
}

/** Live processes (other than this one) whose command line contains `text`. */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of procEntries()) {
    if (pid === process.pid) continue;
    const cmd = readProc(pid, 'cmdline')?.split('\0').join(' ');
    if (cmd?.includes(text)) found.push(`${pid}: ${cmd.slice(0, 200)}`);
  }
  return found;
}

/** The pids of every process below `pid` (children, their children, ...). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of procEntries()) {
    const stat = readProc(p, 'stat');
    if (!stat) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), p]);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}
