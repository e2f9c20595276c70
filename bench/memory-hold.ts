/**
 * --state-hold-gb: a child process that holds N GiB of anonymous memory while
 * the state phase measures a size, so the page cache shrinks by that much.
 * It measures a state larger than the RAM (the 1B run's 54 GB on 23.5 GiB) at
 * a size that fills quickly. Meant for machines without swap (the kernel
 * cannot page the held memory out); the child exits when its parent is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';

const HOLDER = `
const gib = Number(process.argv[1]);
const held = [];
for (let i = 0; i < gib; i++) {
  const b = Buffer.allocUnsafe(1 << 30);
  for (let j = 0; j < b.length; j += 4096) b[j] = 1; // touch every page
  held.push(b);
}
process.stdout.write('held\\n');
const parent = process.ppid;
setInterval(() => { try { process.kill(parent, 0); } catch { process.exit(0); } held[0][0]++; }, 1000);
`;

export interface MemoryHold {
  gib: number;
  pid: number;
  release(): Promise<void>;
}

/** MemAvailable of /proc/meminfo, GiB. */
export async function availableGib(): Promise<number> {
  const m = /MemAvailable:\s+(\d+) kB/.exec(await readFile('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 2 ** 20 : 0;
}

/** Takes `gib` GiB (refused in one line when it would leave under 3 GiB available); resolves once held. */
export async function holdMemory(gib: number): Promise<MemoryHold> {
  const avail = await availableGib();
  if (gib > avail - 3)
    throw new Error(
      `--state-hold-gb ${gib}: only ${avail.toFixed(1)} GiB available; holding it would leave under 3 GiB`,
    );
  const child: ChildProcess = spawn(process.execPath, ['-e', HOLDER, String(gib)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', kill);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`--state-hold-gb ${gib}: the holder exited (${code})`)));
  });
  return {
    gib,
    pid: child.pid ?? 0,
    async release() {
      process.off('exit', kill);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        kill();
        await exited;
      }
    },
  };
}
