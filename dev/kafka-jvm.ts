/**
 * The local Kafka broker's Java processes (see kafka.ts): formatting the log
 * dirs, spawning with output to the log file, the watchdog, stopping, and
 * summaries of what a failed run logged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, open, readFile, stat, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { WinnowError } from '../src/errors.ts';
import type { Logger } from '../src/log.ts';
import type { Layout } from './kafka-config.ts';
import type { KafkaExit } from './kafka.ts';
import { readLogSince } from './process.ts';

const CLUSTER_ID_FILE = 'cluster-id';

/** Formats the log dirs once (KRaft needs it); the cluster id is kept so a lost meta.properties can be redone alike. */
export async function formatOnce(layout: Layout, jarsDir: string, logger: Logger): Promise<void> {
  const formatted = [layout.logDirs, layout.metadataDir].every((d) => existsSync(path.join(d, 'meta.properties')));
  if (formatted) return;
  const idFile = path.join(layout.dataDir, CLUSTER_ID_FILE);
  let clusterId = existsSync(idFile) ? (await readFile(idFile, 'utf8')).trim() : '';
  if (!clusterId) {
    clusterId = newClusterId();
    await writeFile(idFile, `${clusterId}\n`);
  }
  logger.info('formatting Kafka log dirs', { dataDir: layout.dataDir, clusterId });
  const fromOffset = await appendBanner(
    layout.logFile,
    `formatting the log dirs in ${layout.dataDir} (cluster id ${clusterId})`,
  );
  const child = await spawnWithLog(
    layout.logFile,
    'java',
    [
      '-Xmx256m',
      `-Dlog4j.configuration=${pathToFileURL(layout.log4j).href}`,
      '-cp',
      path.join(jarsDir, '*'),
      'kafka.tools.StorageTool',
      'format',
      '--ignore-formatted',
      '-t',
      clusterId,
      '-c',
      layout.serverProperties,
    ],
    layout.dataDir,
  );
  const exit = await exitOf(child);
  if (exit.code !== 0) {
    const log = await readLogSince(layout.logFile, fromOffset);
    throw new WinnowError(
      'PROCESS_EXITED',
      `formatting the Kafka log dirs failed (${describeExit(exit)}):\n${summarizeLog(log)}`,
      {
        hint: `see ${layout.logFile}`,
      },
    );
  }
}

/** A KRaft cluster id: 16 random bytes, base64url; Kafka avoids a leading '-' (it reads as a flag). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export async function spawnWithLog(logFile: string, cmd: string, args: string[], cwd: string): Promise<ChildProcess> {
  const log = await open(logFile, 'a');
  try {
    return spawn(cmd, args, { cwd, stdio: ['ignore', log.fd, log.fd] });
  } finally {
    await log.close(); // the child has its own copy of the descriptor
  }
}

export type ExitInfo = KafkaExit & { error?: Error };

export function exitOf(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
  });
}

export function startWatchdog(pid: number, logger: Logger): ChildProcess {
  // Reads until EOF, i.e. until every copy of the pipe's write end is gone: ours
  // closes only when this process exits. Then stop the broker, SIGKILL after 30 s.
  const script =
    'while read -r line; do :; done; kill -TERM "$1" 2>/dev/null || exit 0; i=0; ' +
    'while kill -0 "$1" 2>/dev/null; do i=$((i+1)); if [ "$i" -ge 30 ]; then kill -KILL "$1"; exit 0; fi; sleep 1; done';
  const watchdog = spawn('sh', ['-c', script, 'winnow-kafka-watchdog', String(pid)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.once('error', (err) =>
    logger.warn('no watchdog for the Kafka broker; it would outlive a crash of this process', { err }),
  );
  watchdog.stdin?.on('error', (err) => logger.debug('Kafka watchdog pipe closed', { err }));
  watchdog.unref();
  (watchdog.stdin as Socket | null)?.unref();
  return watchdog;
}

export async function terminate(
  child: ChildProcess,
  exited: Promise<ExitInfo>,
  timeoutMs: number,
  logger: Logger,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const started = Date.now();
  child.kill('SIGTERM');
  const timer = new AbortController();
  const timedOut = await Promise.race([
    exited.then(() => false),
    sleep(timeoutMs, true, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort();
  if (timedOut) {
    logger.warn('Kafka did not stop in time; killing it', { pid: child.pid, timeoutMs });
    child.kill('SIGKILL');
    await exited;
  }
  logger.info('Kafka stopped', { pid: child.pid, ms: Date.now() - started });
}

export function describeExit(exit: ExitInfo): string {
  if (exit.error) return exit.error.message;
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/** The errors of a failed run if it logged any, else its last lines. */
export function summarizeLog(log: string): string {
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter(
    (l) =>
      /^\[[^\]]+\] (ERROR|FATAL) /.test(l) || /^(Error|Exception)\b/.test(l) || /^[\w.$]+(Exception|Error)\b/.test(l),
  );
  const picked = errors.length > 0 ? [...new Set(errors)].slice(-8) : lines.slice(-15);
  return picked.map((l) => `  ${l.length > 400 ? `${l.slice(0, 400)}...` : l}`).join('\n');
}

export async function appendBanner(logFile: string, what: string): Promise<number> {
  const before = await stat(logFile).then(
    (s) => s.size,
    () => 0,
  );
  await appendFile(logFile, `==== winnow ${new Date().toISOString()}: ${what}\n`);
  return before;
}
