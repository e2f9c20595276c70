/**
 * Why one file over 300 lines: the local broker's configuration, start, readiness and stop are one lifecycle over one JVM.
 *
 * A local Apache Kafka broker for development and tests, without Docker: the
 * broker's jars from Maven Central (kafka-jars.ts) run by `java` as a child
 * process, in KRaft combined mode (broker and controller in one JVM, no
 * ZooKeeper). Two client listeners: PLAINTEXT for simple tests, and
 * SASL_PLAINTEXT with PLAIN users as in the reference scenario.
 *
 * Everything lives in `dataDir`: the generated server.properties, JAAS and
 * log4j files (rewritten on every start, so ports may change between starts),
 * the cluster id (kept, so a restart reuses the formatted log dirs), the pid
 * file of the running broker (the data dir's lock), the topic data under
 * `logs/` and the KRaft metadata log under `metadata/`.
 *
 * The JVM is a non-detached child. A tiny `sh` watchdog holds a pipe from this
 * process; if this process dies in any way (even SIGKILL) the pipe closes and
 * the watchdog sends the broker SIGTERM (SIGKILL 30 s later), so no broker
 * outlives its parent. Without `sh` on PATH the broker would be orphaned.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { WinnowError } from '../src/errors.ts';
import { silentLogger, type Logger } from '../src/log.ts';
import {
  advertisedHost,
  assertRequestedPortsFree,
  choosePorts,
  hostPort,
  JVM_OPTIONS,
  LOG4J_PROPERTIES,
  PORT_FLAGS,
  renderJaas,
  renderServerProperties,
  validateUser,
  type Layout,
  type Ports,
} from './kafka-config.ts';
import { ensureKafkaJars, KAFKA_VERSION, type DownloadProgress } from './kafka-jars.ts';
import {
  appendBanner,
  describeExit,
  exitOf,
  formatOnce,
  spawnWithLog,
  startWatchdog,
  summarizeLog,
  terminate,
  type ExitInfo,
} from './kafka-jvm.ts';
import { claimDataDir, dataDirLocked, removePidFile, STARTING } from './kafka-lock.ts';
import { readLogSince } from './process.ts';

export { KAFKA_VERSION } from './kafka-jars.ts';

export interface EmbeddedKafkaOptions {
  /** Log dirs, KRaft metadata, generated configs; created if missing. */
  dataDir: string;
  /** Listen and advertise address; default '127.0.0.1'. */
  host?: string;
  /** PLAINTEXT listener; default 9092; 0 picks a free port. */
  port?: number;
  /** SASL_PLAINTEXT listener (PLAIN); default 9093; 0 picks a free port. */
  saslPort?: number;
  /** KRaft controller listener; default 0 (a free port). */
  controllerPort?: number;
  /** SASL/PLAIN users, name -> password; default { admin: 'admin-secret' }. The first is `sasl` below. */
  users?: Record<string, string>;
  /** Broker output (appended); default `<dataDir>/kafka.log`. */
  logFile?: string;
  /** Milliseconds until the broker must answer; default 90000. */
  readyTimeoutMs?: number;
  /** Milliseconds of clean shutdown after SIGTERM before SIGKILL; default 20000. */
  stopTimeoutMs?: number;
  /** The jars' download, as it goes (first run only; see kafka-jars.ts). */
  onDownload?: (p: DownloadProgress) => void;
  /** Root of winnow's download cache (see kafka-jars.ts). */
  cacheDir?: string;
  logger?: Logger;
}

export interface KafkaExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningKafka {
  /** PLAINTEXT, e.g. ['127.0.0.1:9092']. */
  brokers: string[];
  /** SASL_PLAINTEXT, e.g. ['127.0.0.1:9093']. */
  saslBrokers: string[];
  sasl: { mechanism: 'plain'; username: string; password: string };
  pid: number;
  version: string;
  dataDir: string;
  logFile: string;
  /** Resolves when the broker process has exited, for whatever reason. */
  exited: Promise<KafkaExit>;
  /** SIGTERM (clean shutdown), then SIGKILL after stopTimeoutMs; idempotent. */
  stop(): Promise<void>;
}

const PID_FILE = 'kafka.pid';
const MAX_BIND_ATTEMPTS = 3;

export async function startEmbeddedKafka(opts: EmbeddedKafkaOptions): Promise<RunningKafka> {
  const logger = opts.logger ?? silentLogger;
  const host = opts.host ?? '127.0.0.1';
  const users = opts.users ?? { admin: 'admin-secret' };
  const [firstUser] = Object.entries(users);
  if (!firstUser) throw new WinnowError('CONFIG_INVALID', 'the local Kafka broker needs at least one SASL user');
  for (const [name, password] of Object.entries(users)) validateUser(name, password);

  const dataDir = path.resolve(opts.dataDir);
  const layout: Layout = {
    dataDir,
    logDirs: path.join(dataDir, 'logs'),
    metadataDir: path.join(dataDir, 'metadata'),
    serverProperties: path.join(dataDir, 'server.properties'),
    jaas: path.join(dataDir, 'kafka_server_jaas.conf'),
    log4j: path.join(dataDir, 'log4j.properties'),
    pidFile: path.join(dataDir, PID_FILE),
    logFile: path.resolve(opts.logFile ?? path.join(dataDir, 'kafka.log')),
  };
  await mkdir(layout.logDirs, { recursive: true });
  await mkdir(layout.metadataDir, { recursive: true });
  await mkdir(path.dirname(layout.logFile), { recursive: true });

  const requested: Ports = {
    plaintext: opts.port ?? 9092,
    sasl: opts.saslPort ?? 9093,
    controller: opts.controllerPort ?? 0,
  };
  // The data dir first: a second `start` of the same broker would also find its ports taken.
  await claimDataDir(layout);
  try {
    await assertRequestedPortsFree(requested, host);
    const jarsDir = await ensureKafkaJars({
      cacheDir: opts.cacheDir,
      version: KAFKA_VERSION,
      logger,
      ...(opts.onDownload ? { onProgress: opts.onDownload } : {}),
    });
    await writeFile(layout.jaas, renderJaas(users), { mode: 0o600 });
    await chmod(layout.jaas, 0o600);
    await writeFile(layout.log4j, LOG4J_PROPERTIES);

    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) await claimDataDir(layout);
      const ports = await choosePorts(requested, host);
      await writeFile(layout.serverProperties, renderServerProperties(layout, host, ports));
      await formatOnce(layout, jarsDir, logger);
      try {
        const broker = await launch(layout, jarsDir, host, ports, opts, logger);
        const [username, password] = firstUser;
        return { ...broker, sasl: { mechanism: 'plain', username, password } };
      } catch (err) {
        // A port picked as free can be taken by someone else before the JVM binds it.
        const taken =
          err instanceof WinnowError && err.code === 'PORT_IN_USE' ? bindFailurePort(err.message) : undefined;
        const picked =
          taken !== undefined &&
          Object.entries(requested).some(([k, v]) => v === 0 && ports[k as keyof Ports] === taken);
        if (!picked || attempt >= MAX_BIND_ATTEMPTS) throw err;
        logger.warn('a free port was taken before Kafka bound it; retrying with other ports', { port: taken });
      }
    }
  } catch (err) {
    await removePidFile(layout.pidFile, STARTING);
    throw err;
  }
}

/** kafkajs config for a running broker: PLAINTEXT by default, SASL_PLAINTEXT/PLAIN with `sasl: true`. */
export function kafkaClientConfig(
  running: Pick<RunningKafka, 'brokers' | 'saslBrokers' | 'sasl'>,
  opts: { sasl?: boolean; clientId?: string; logLevel?: logLevel } = {},
): KafkaConfig {
  const config: KafkaConfig = {
    clientId: opts.clientId ?? 'winnow',
    brokers: opts.sasl ? running.saslBrokers : running.brokers,
    logLevel: opts.logLevel ?? logLevel.NOTHING,
  };
  if (opts.sasl) config.sasl = { ...running.sasl };
  return config;
}

async function launch(
  layout: Layout,
  jarsDir: string,
  host: string,
  ports: Ports,
  opts: EmbeddedKafkaOptions,
  logger: Logger,
): Promise<Omit<RunningKafka, 'sasl'>> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 90_000;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 20_000;
  const advertised = advertisedHost(host);
  const brokers = [`${hostPort(advertised, ports.plaintext)}`];
  const saslBrokers = [`${hostPort(advertised, ports.sasl)}`];

  const fromOffset = await appendBanner(
    layout.logFile,
    `starting Kafka ${KAFKA_VERSION} (${brokers[0]}, SASL ${saslBrokers[0]})`,
  );
  const started = Date.now();
  const child = await spawnWithLog(
    layout.logFile,
    'java',
    [
      ...JVM_OPTIONS,
      `-Djava.security.auth.login.config=${layout.jaas}`,
      `-Dlog4j.configuration=${pathToFileURL(layout.log4j).href}`,
      '-cp',
      path.join(jarsDir, '*'),
      'kafka.Kafka',
      layout.serverProperties,
    ],
    layout.dataDir,
  );
  const pid = child.pid;
  if (pid === undefined) {
    const exit = await exitOf(child);
    throw new WinnowError(
      'PROCESS_EXITED',
      `could not start java for Kafka: ${exit.error?.message ?? 'unknown error'}`,
    );
  }
  const watchdog = startWatchdog(pid, logger);
  // Settles once the broker is gone and its watchdog and pid file with it.
  const exited = exitOf(child).then(async (exit) => {
    watchdog.kill('SIGKILL');
    await removePidFile(layout.pidFile, String(pid), STARTING).catch((err: unknown) =>
      logger.warn('could not remove the Kafka pid file', { err }),
    );
    return exit;
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= terminate(child, exited, stopTimeoutMs, logger);
    return stopping;
  };

  try {
    await writeFile(layout.pidFile, `${pid}\n`);
    const outcome = await waitReady(brokers, exited, started + readyTimeoutMs);
    if (outcome.kind === 'exited') {
      const log = await readLogSince(layout.logFile, fromOffset);
      throw exitError(outcome.exit, log, layout, ports);
    }
    if (outcome.kind === 'timeout') {
      await stop();
      const log = await readLogSince(layout.logFile, fromOffset);
      throw new WinnowError(
        'NOT_READY',
        `Kafka did not answer on ${brokers[0]} within ${readyTimeoutMs} ms (last error: ${outcome.lastError}); last log lines:\n${summarizeLog(log)}`,
        { hint: `see ${layout.logFile}; a slow machine may need a longer ready timeout`, retryable: true },
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }

  logger.info('Kafka ready', { version: KAFKA_VERSION, brokers, saslBrokers, pid, ms: Date.now() - started });
  void exited.then((exit) => {
    if (!stopping) logger.warn('Kafka exited unexpectedly', { pid, ...exit, logFile: layout.logFile });
  });
  return {
    brokers,
    saslBrokers,
    pid,
    version: KAFKA_VERSION,
    dataDir: layout.dataDir,
    logFile: layout.logFile,
    exited: exited.then(({ code, signal }) => ({ code, signal })),
    stop,
  };
}

type ReadyOutcome = { kind: 'ready' } | { kind: 'exited'; exit: ExitInfo } | { kind: 'timeout'; lastError: string };

/** Ready when a PLAINTEXT admin client sees the broker in describeCluster. */
async function waitReady(brokers: string[], exited: Promise<ExitInfo>, deadline: number): Promise<ReadyOutcome> {
  const client = new Kafka({
    clientId: 'winnow-ready-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 1000,
    requestTimeout: 5000,
  });
  let exit: ExitInfo | undefined;
  void exited.then((e) => (exit = e));
  let lastError = 'no answer yet';
  while (Date.now() < deadline) {
    if (exit) return { kind: 'exited', exit };
    const admin = client.admin();
    const probe = (async (): Promise<boolean> => {
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.brokers.length > 0;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        return false;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    })();
    const timer = new AbortController();
    const ok = await Promise.race([
      probe,
      exited.then(() => false),
      sleep(Math.max(0, deadline - Date.now()), false, { signal: timer.signal }).catch(() => false),
    ]);
    timer.abort();
    if (ok) return { kind: 'ready' };
    if (exit) return { kind: 'exited', exit };
    await sleep(250);
  }
  return { kind: 'timeout', lastError };
}

function exitError(exit: ExitInfo, log: string, layout: Layout, ports: Ports): WinnowError {
  if (/Failed to acquire lock on file \.lock in/.test(log)) return dataDirLocked(layout);
  const bind = /Socket server failed to bind to \S*?:(\d+)/.exec(log);
  if (bind?.[1] || /Address already in use/.test(log)) {
    const port = Number(bind?.[1]);
    const key = (Object.keys(ports) as (keyof Ports)[]).find((k) => ports[k] === port);
    const [what, flag] = key ? PORT_FLAGS[key] : ['Kafka', '--kafka-port'];
    return new WinnowError(
      'PORT_IN_USE',
      `${what} port ${bind?.[1] ?? '?'} is already in use (the broker could not bind it)`,
      {
        hint: `stop whatever listens there or choose another port with ${flag}`,
      },
    );
  }
  return new WinnowError(
    'PROCESS_EXITED',
    `Kafka exited before it was ready (${describeExit(exit)}); last log lines:\n${summarizeLog(log)}`,
    {
      hint: `see ${layout.logFile}`,
    },
  );
}

function bindFailurePort(message: string): number | undefined {
  const m = /port (\d+) is already in use \(the broker/.exec(message);
  return m?.[1] ? Number(m[1]) : undefined;
}
