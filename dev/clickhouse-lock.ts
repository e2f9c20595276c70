/** The embedded ClickHouse's data directory lock (see clickhouse.ts) and its DATA_DIR_LOCKED errors. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { WinnowError } from '../src/errors.ts';
import { isAlive } from './process.ts';

/**
 * ClickHouse locks `<dataDir>/status` and writes its pid there; a clean stop
 * removes the file, a crash leaves it with a dead pid. A live pid that looks
 * like a ClickHouse process means another instance owns the directory. (If the
 * check misses one, the child fails on the lock and classifyEarlyExit says so.)
 */
export async function assertDataDirFree(dataDir: string): Promise<void> {
  const pid = await statusPid(dataDir);
  if (pid === undefined || pid === process.pid || !isAlive(pid)) return;
  if (process.platform === 'linux') {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    // A recycled pid of some unrelated program does not hold the lock.
    if (!/clickhouse|chdb/i.test(cmdline)) return;
  }
  throw dataDirLocked(dataDir, pid);
}

export function dataDirLocked(dataDir: string, pid: number | undefined): WinnowError {
  const by = pid === undefined ? '' : ` (pid ${pid})`;
  return new WinnowError('DATA_DIR_LOCKED', `ClickHouse data directory ${dataDir} is in use by another instance${by}`, {
    hint: 'stop it with `winnow dev down` or choose another --data-dir',
  });
}

export async function statusPid(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, 'status'), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // No file: nobody runs there. Not a file: ClickHouse will say what is wrong.
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    throw err;
  }
  const m = /^PID: (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}
