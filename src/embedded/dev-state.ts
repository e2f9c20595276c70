import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** What `winnow dev up` started, as kept in .winnow/dev.json of the working directory. */
export interface DevState {
  supervisorPid: number;
  startedAt: string;
  stateDir: string;
  clickhouse: {
    url: string;
    host: string;
    httpPort: number;
    tcpPort: number;
    pid: number;
    version: string;
    dataDir: string;
    logFile: string;
  };
  kafka: {
    brokers: string[];
    saslBrokers: string[];
    sasl: { mechanism: 'plain'; username: string; password: string };
    pid: number;
    version: string;
    dataDir: string;
    logFile: string;
  };
}

export function defaultStateDir(cwd = process.cwd()): string {
  return path.join(cwd, '.winnow');
}

export function stateFile(stateDir: string): string {
  return path.join(stateDir, 'dev.json');
}

export async function readDevState(stateDir: string): Promise<DevState | undefined> {
  let text: string;
  try {
    text = await readFile(stateFile(stateDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as DevState;
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

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
