/**
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
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { WinnowError } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { ensureKafkaJars, KAFKA_VERSION } from './kafka-jars.ts';
import { assertPortFree, freePort } from './ports.ts';
import { isAlive, readLogSince } from './process.ts';

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
const CLUSTER_ID_FILE = 'cluster-id';
const MAX_BIND_ATTEMPTS = 3;

interface Ports {
  plaintext: number;
  sasl: number;
  controller: number;
}

interface Layout {
  dataDir: string;
  logDirs: string;
  metadataDir: string;
  serverProperties: string;
  jaas: string;
  log4j: string;
  pidFile: string;
  logFile: string;
}

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
    const jarsDir = await ensureKafkaJars({ cacheDir: opts.cacheDir, version: KAFKA_VERSION, logger });
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
        const taken = err instanceof WinnowError && err.code === 'PORT_IN_USE' ? bindFailurePort(err.message) : undefined;
        const picked = taken !== undefined && Object.entries(requested).some(([k, v]) => v === 0 && ports[k as keyof Ports] === taken);
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

  const fromOffset = await appendBanner(layout.logFile, `starting Kafka ${KAFKA_VERSION} (${brokers[0]}, SASL ${saslBrokers[0]})`);
  const started = Date.now();
  const child = await spawnWithLog(layout.logFile, 'java', [
    ...JVM_OPTIONS,
    `-Djava.security.auth.login.config=${layout.jaas}`,
    `-Dlog4j.configuration=${pathToFileURL(layout.log4j).href}`,
    '-cp',
    path.join(jarsDir, '*'),
    'kafka.Kafka',
    layout.serverProperties,
  ], layout.dataDir);
  const pid = child.pid;
  if (pid === undefined) {
    const exit = await exitOf(child);
    throw new WinnowError('PROCESS_EXITED', `could not start java for Kafka: ${exit.error?.message ?? 'unknown error'}`);
  }
  const watchdog = startWatchdog(pid, logger);
  // Settles once the broker is gone and its watchdog and pid file with it.
  const exited = exitOf(child).then(async (exit) => {
    watchdog.kill('SIGKILL');
    await removePidFile(layout.pidFile, String(pid), STARTING).catch((err: unknown) => logger.warn('could not remove the Kafka pid file', { err }));
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

// Modest heap: the machine is shared with ClickHouse. G1 settings as in Kafka's
// kafka-run-class.sh; a JVM out of memory exits instead of limping on.
const JVM_OPTIONS = [
  '-Xmx512m',
  '-Xms256m',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:InitiatingHeapOccupancyPercent=35',
  '-XX:+ExplicitGCInvokesConcurrent',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
];

function renderServerProperties(layout: Layout, host: string, p: Ports): string {
  const adv = advertisedHost(host);
  const listen = (name: string, port: number): string => `${name}://${hostPort(host, port)}`;
  return `# Generated by winnow (src/embedded/kafka.ts) on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${hostPort(adv, p.controller)}
controller.listener.names=CONTROLLER
listeners=${listen('PLAINTEXT', p.plaintext)},${listen('SASL_PLAINTEXT', p.sasl)},${listen('CONTROLLER', p.controller)}
advertised.listeners=PLAINTEXT://${hostPort(adv, p.plaintext)},SASL_PLAINTEXT://${hostPort(adv, p.sasl)}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN
log.dirs=${escapeProperty(layout.logDirs)}
# Apart from log.dirs, so the KRaft metadata log is locked as the JVM starts: a
# second broker on this data dir then stops before it touches anything.
metadata.log.dir=${escapeProperty(layout.metadataDir)}

# One broker: every replication factor and ISR is 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=true

# Quick to start and to stop on a small machine: consumer groups start at once,
# internal topics are small, nothing to rebalance between brokers.
group.initial.rebalance.delay.ms=0
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
auto.leader.rebalance.enable=false
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=33554432
`;
}

/** KafkaServer section read by PlainLoginModule: each `user_<name>` is an accepted login. */
function renderJaas(users: Record<string, string>): string {
  const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = Object.entries(users).map(([name, password]) => `  user_${name}=${q(password)}`);
  return `KafkaServer {\n  org.apache.kafka.common.security.plain.PlainLoginModule required\n${lines.join('\n')};\n};\n`;
}

const LOG4J_PROPERTIES = `# Generated by winnow: the broker logs to stdout, which goes to the log file.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.common.config=WARN
log4j.logger.kafka.request.logger=WARN
`;

function validateUser(name: string, password: string): void {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new WinnowError('CONFIG_INVALID', `SASL user name "${name}" may only contain letters, digits, '.', '_' and '-'`);
  }
  if (password === '' || /[\r\n]/.test(password)) {
    throw new WinnowError('CONFIG_INVALID', `the password of SASL user "${name}" must be non-empty and on one line`);
  }
}

/**
 * The pid file is the data dir's lock: `starting <pid of this process>` while a
 * start is under way, then the broker's pid. Created exclusively, so of two
 * concurrent starts one wins; a file whose process is gone is stale.
 */
const STARTING = `starting ${process.pid}`;

async function claimDataDir(layout: Layout): Promise<void> {
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

function dataDirLocked(layout: Layout, pid?: number, starting = false): WinnowError {
  const by =
    pid === undefined ? 'another Kafka process' : starting ? `a process starting a broker (pid ${pid})` : `a running Kafka broker (pid ${pid})`;
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
async function removePidFile(pidFile: string, ...owners: string[]): Promise<void> {
  const text = await readFile(pidFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  if (owners.includes(text.trim())) await rm(pidFile, { force: true });
}

const PORT_FLAGS: Record<keyof Ports, [string, string]> = {
  plaintext: ['Kafka PLAINTEXT', '--kafka-port'],
  sasl: ['Kafka SASL_PLAINTEXT', '--kafka-sasl-port'],
  controller: ['Kafka controller', '--kafka-controller-port'],
};

async function assertRequestedPortsFree(requested: Ports, host: string): Promise<void> {
  const explicit = (Object.keys(requested) as (keyof Ports)[]).filter((k) => requested[k] !== 0);
  for (const k of explicit) {
    const port = requested[k];
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new WinnowError('CONFIG_INVALID', `${PORT_FLAGS[k][0]} port ${port} is not a port number`);
    }
    const twin = explicit.find((o) => o !== k && requested[o] === port);
    if (twin) throw new WinnowError('CONFIG_INVALID', `${PORT_FLAGS[k][0]} and ${PORT_FLAGS[twin][0]} listeners both ask for port ${port}`);
    await assertPortFree(port, host, PORT_FLAGS[k][0], `stop whatever listens there or choose another port with ${PORT_FLAGS[k][1]}`);
  }
}

async function choosePorts(requested: Ports, host: string): Promise<Ports> {
  const used = new Set(Object.values(requested).filter((p) => p !== 0));
  const pick = async (p: number): Promise<number> => {
    if (p !== 0) return p;
    for (;;) {
      const port = await freePort(host);
      if (!used.has(port)) {
        used.add(port);
        return port;
      }
    }
  };
  return { plaintext: await pick(requested.plaintext), sasl: await pick(requested.sasl), controller: await pick(requested.controller) };
}

/** Formats the log dirs once (KRaft needs it); the cluster id is kept so a lost meta.properties can be redone alike. */
async function formatOnce(layout: Layout, jarsDir: string, logger: Logger): Promise<void> {
  const formatted = [layout.logDirs, layout.metadataDir].every((d) => existsSync(path.join(d, 'meta.properties')));
  if (formatted) return;
  const idFile = path.join(layout.dataDir, CLUSTER_ID_FILE);
  let clusterId = existsSync(idFile) ? (await readFile(idFile, 'utf8')).trim() : '';
  if (!clusterId) {
    clusterId = newClusterId();
    await writeFile(idFile, `${clusterId}\n`);
  }
  logger.info('formatting Kafka log dirs', { dataDir: layout.dataDir, clusterId });
  const fromOffset = await appendBanner(layout.logFile, `formatting the log dirs in ${layout.dataDir} (cluster id ${clusterId})`);
  const child = await spawnWithLog(layout.logFile, 'java', [
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
  ], layout.dataDir);
  const exit = await exitOf(child);
  if (exit.code !== 0) {
    const log = await readLogSince(layout.logFile, fromOffset);
    throw new WinnowError('PROCESS_EXITED', `formatting the Kafka log dirs failed (${describeExit(exit)}):\n${summarizeLog(log)}`, {
      hint: `see ${layout.logFile}`,
    });
  }
}

/** A KRaft cluster id: 16 random bytes, base64url; Kafka avoids a leading '-' (it reads as a flag). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function spawnWithLog(logFile: string, cmd: string, args: string[], cwd: string): Promise<ChildProcess> {
  const log = await open(logFile, 'a');
  try {
    return spawn(cmd, args, { cwd, stdio: ['ignore', log.fd, log.fd] });
  } finally {
    await log.close(); // the child has its own copy of the descriptor
  }
}

type ExitInfo = KafkaExit & { error?: Error };

function exitOf(child: ChildProcess): Promise<ExitInfo> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, error });
    });
  });
}

function startWatchdog(pid: number, logger: Logger): ChildProcess {
  // Reads until EOF, i.e. until every copy of the pipe's write end is gone: ours
  // closes only when this process exits. Then stop the broker, SIGKILL after 30 s.
  const script =
    'while read -r line; do :; done; kill -TERM "$1" 2>/dev/null || exit 0; i=0; ' +
    'while kill -0 "$1" 2>/dev/null; do i=$((i+1)); if [ "$i" -ge 30 ]; then kill -KILL "$1"; exit 0; fi; sleep 1; done';
  const watchdog = spawn('sh', ['-c', script, 'winnow-kafka-watchdog', String(pid)], { stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.once('error', (err) => logger.warn('no watchdog for the Kafka broker; it would outlive a crash of this process', { err }));
  watchdog.stdin?.on('error', (err) => logger.debug('Kafka watchdog pipe closed', { err }));
  watchdog.unref();
  (watchdog.stdin as Socket | null)?.unref();
  return watchdog;
}

async function terminate(child: ChildProcess, exited: Promise<ExitInfo>, timeoutMs: number, logger: Logger): Promise<void> {
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
    return new WinnowError('PORT_IN_USE', `${what} port ${bind?.[1] ?? '?'} is already in use (the broker could not bind it)`, {
      hint: `stop whatever listens there or choose another port with ${flag}`,
    });
  }
  return new WinnowError('PROCESS_EXITED', `Kafka exited before it was ready (${describeExit(exit)}); last log lines:\n${summarizeLog(log)}`, {
    hint: `see ${layout.logFile}`,
  });
}

function bindFailurePort(message: string): number | undefined {
  const m = /port (\d+) is already in use \(the broker/.exec(message);
  return m?.[1] ? Number(m[1]) : undefined;
}

function describeExit(exit: ExitInfo): string {
  if (exit.error) return exit.error.message;
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/** The errors of a failed run if it logged any, else its last lines. */
function summarizeLog(log: string): string {
  const lines = log.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter(
    (l) => /^\[[^\]]+\] (ERROR|FATAL) /.test(l) || /^(Error|Exception)\b/.test(l) || /^[\w.$]+(Exception|Error)\b/.test(l),
  );
  const picked = errors.length > 0 ? [...new Set(errors)].slice(-8) : lines.slice(-15);
  return picked.map((l) => `  ${l.length > 400 ? `${l.slice(0, 400)}...` : l}`).join('\n');
}

async function appendBanner(logFile: string, what: string): Promise<number> {
  const before = await stat(logFile).then((s) => s.size, () => 0);
  await appendFile(logFile, `==== winnow ${new Date().toISOString()}: ${what}\n`);
  return before;
}


/** A wildcard listen address cannot be advertised; clients on this machine use loopback. */
function advertisedHost(host: string): string {
  return host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function escapeProperty(value: string): string {
  return value.replace(/\\/g, '\\\\');
}
