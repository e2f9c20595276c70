/** The local Kafka broker's data dir lock (see kafka.ts): its pid file, and DATA_DIR_LOCKED errors. */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { WinnowError } from '../src/errors.ts';
import type { Layout } from './kafka-config.ts';
import { isAlive } from './process.ts';

/**
 * The pid file is the data dir's lock: `starting <pid of this process>` while a
 * start is under way, then the broker's pid. Created exclusively, so of two
 * concurrent starts one wins; a file whose process is gone is stale.
 */
export const STARTING = `starting ${process.pid}`;

export async function claimDataDir(layout: Layout): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(layout.pidFile, `${STARTING}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    const text = await readFile(layout.pidFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return ''; // released meanwhile
      throw err;
    });
    const m = /^(starting )?(\d+)\s*$/.exec(text);
    const pid = Number(m?.[2]);
    const live = m ? (m[1] ? isAlive(pid) : await isOurBroker(pid, layout)) : false;
    if (live) throw dataDirLocked(layout, pid, Boolean(m?.[1]));
    await rm(layout.pidFile, { force: true }); // stale
  }
}

export function dataDirLocked(layout: Layout, pid?: number, starting = false): WinnowError {
  const by =
    pid === undefined
      ? 'another Kafka process'
      : starting
        ? `a process starting a broker (pid ${pid})`
        : `a running Kafka broker (pid ${pid})`;
  const hint =
    pid === undefined
      ? 'stop that broker first or choose another data dir'
      : `stop that broker first (e.g. winnow dev down, or kill ${pid}) or choose another data dir; ` +
        `if pid ${pid} is no Kafka broker of winnow, delete ${layout.pidFile}`;
  return new WinnowError('DATA_DIR_LOCKED', `Kafka data dir ${layout.dataDir} is in use by ${by}`, { hint });
}

/** Alive, and (where /proc tells) a broker started on this data dir, not a recycled pid. */
async function isOurBroker(pid: number, layout: Layout): Promise<boolean> {
  if (!isAlive(pid)) return false;
  if (process.platform !== 'linux') return true; // no /proc: a live pid from our pid file is taken as the broker
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return ''; // exited meanwhile
    throw err;
  });
  return cmdline.includes('kafka.Kafka') && cmdline.includes(layout.serverProperties);
}

/** Removes the pid file if it still says one of `owners` (not a later start's claim). */
export async function removePidFile(pidFile: string, ...owners: string[]): Promise<void> {
  const text = await readFile(pidFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  if (owners.includes(text.trim())) await rm(pidFile, { force: true });
}
