import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WinnowError } from '../src/errors.ts';
import type { RunningClickHouse } from './clickhouse.ts';
import type { RunningKafka } from './kafka.ts';
import { isAlive } from './process.ts';

export { isAlive };

/** What `winnow dev up` started, as kept in .winnow/dev.json of the working directory. */
export interface DevState {
  supervisorPid: number;
  startedAt: string;
  stateDir: string;
  /** the running servers as reported, without their handles */
  clickhouse: Omit<RunningClickHouse, 'stop'>;
  kafka: Omit<RunningKafka, 'stop' | 'exited'>;
}

export function defaultStateDir(cwd = process.cwd()): string {
  return path.join(cwd, '.winnow');
}

export function stateFile(stateDir: string): string {
  return path.join(stateDir, 'dev.json');
}

export async function readDevState(stateDir: string): Promise<DevState | undefined> {
  const file = stateFile(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const state = JSON.parse(text) as DevState;
    if (
      typeof state.supervisorPid === 'number' &&
      typeof state.clickhouse?.pid === 'number' &&
      typeof state.kafka?.pid === 'number'
    ) {
      return state;
    }
  } catch {
    // reported below
  }
  throw new WinnowError('CONFIG_INVALID', `${file} is not a state file written by winnow dev up`, {
    hint: `delete it, stop any servers it started by their pid, then run winnow dev up again`,
  });
}

export async function writeDevState(state: DevState): Promise<void> {
  await mkdir(state.stateDir, { recursive: true });
  const file = stateFile(state.stateDir);
  // Write then rename, so a reader never sees half a file.
  await writeFile(file + '.tmp', JSON.stringify(state, null, 2) + '\n');
  await rename(file + '.tmp', file);
}

export async function removeDevState(stateDir: string): Promise<void> {
  await rm(stateFile(stateDir), { force: true });
}

/** The command line of `pid` (arguments joined by spaces), or undefined where there is no /proc or no such process. */
function cmdline(pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/**
 * True when `pid` runs and, where /proc tells, its command line contains every
 * marker: a pid from an old dev.json may since belong to an unrelated program,
 * which must be neither reported as our server nor signalled.
 */
export function isOurProcess(pid: number, ...markers: string[]): boolean {
  if (!isAlive(pid)) return false;
  if (process.platform !== 'linux') return true;
  const line = cmdline(pid);
  return line !== undefined && markers.every((m) => line.includes(m));
}

/** The markers isOurProcess looks for in each process `winnow dev up` starts. */
export function processMarkers(state: DevState): { supervisor: string[]; clickhouse: string[]; kafka: string[] } {
  return {
    // Not the state dir: supervisors started before it was on their command line must still be found.
    // dev/supervisor.ts from the sources, dist/dev/supervisor.js from the compiled CLI.
    supervisor: [`dev${path.sep}supervisor.`],
    clickhouse: ['clickhouse-child', JSON.stringify(state.clickhouse.dataDir)],
    kafka: ['kafka.Kafka', path.join(state.kafka.dataDir, 'server.properties')],
  };
}

/** A failure of `winnow dev` in the shape the terminal gets it: one line of cause, one line of fix. */
export interface OneLineError {
  code: string;
  message: string;
  hint?: string;
}

/**
 * Errors may carry log tails after their first line ("...; last log lines:\n...").
 * The terminal gets the first line of message and hint; when something was cut
 * and the hint names no log file, it points to `detailsIn`, where the caller
 * has logged the whole error.
 */
export function oneLineError(err: unknown, detailsIn: string): OneLineError {
  const code = err instanceof WinnowError ? err.code : 'INTERNAL';
  const [message, messageCut] = firstLine(err instanceof Error ? err.message : String(err));
  const [hint, hintCut] =
    err instanceof WinnowError && err.hint !== undefined ? firstLine(err.hint) : [undefined, false];
  let fix = hint;
  if ((messageCut || hintCut) && !/\.log\b/.test(fix ?? ''))
    fix = fix ? `${fix}; details in ${detailsIn}` : `details in ${detailsIn}`;
  return fix ? { code, message: message || code, hint: fix } : { code, message: message || code };
}

function firstLine(text: string): [string, boolean] {
  const lines = text.split(/\r?\n/);
  const first = (lines[0] ?? '').replace(/(;\s*last log lines)?\s*:\s*$/i, '').trim();
  return [first, lines.slice(1).some((l) => l.trim() !== '')];
}
