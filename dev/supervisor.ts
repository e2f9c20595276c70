/**
 * The process behind `winnow dev up`: it owns the embedded ClickHouse and the
 * local Kafka broker, so they outlive the command that started them, and it
 * stops both cleanly on SIGTERM (`winnow dev down`). It talks to the command
 * that spawned it over the IPC channel until both servers are ready.
 */
import path from 'node:path';
import { describeError, WinnowError } from '../src/errors.ts';
import { createLogger, type Logger } from '../src/log.ts';
import { ROCKSDB_SERVER_CONFIG, startEmbeddedClickHouse, type RunningClickHouse } from './clickhouse.ts';
import { oneLineError, removeDevState, writeDevState, type DevState } from './dev-state.ts';
import { checkJava } from './kafka-jars.ts';
import { startEmbeddedKafka, type RunningKafka } from './kafka.ts';
import { assertPortFree } from './ports.ts';

export interface SupervisorOptions {
  stateDir: string;
  dataDir: string;
  host: string;
  clickhouseHttpPort: number;
  clickhouseTcpPort: number;
  kafkaPort: number;
  kafkaSaslPort: number;
  readyTimeoutMs: number;
}

export type SupervisorMessage =
  /** a line of its own; `done` names the task it ends */
  | { type: 'progress'; message: string; done?: string }
  /** what is being waited on now (a task: kafka-jars, clickhouse, kafka), with bytes of total for a download */
  | { type: 'activity'; task: string; text: string; bytes?: number; total?: number }
  | { type: 'ready'; state: DevState }
  /** message and hint are one line each; the full error is in the supervisor's log. */
  | { type: 'error'; message: string; hint?: string; code: string };

function send(msg: SupervisorMessage): void {
  if (process.send && process.connected) process.send(msg);
}

/** Where the supervisor's own output goes (dev.ts points its stdout and stderr there). */
export function supervisorLogFile(stateDir: string): string {
  return path.join(stateDir, 'logs', 'supervisor.log');
}

/** Logs the whole error (log tails included), then reports it to `winnow dev up` as one line. */
function reportError(err: unknown, opts: SupervisorOptions, logger: Logger): void {
  logger.error('dev up failed', { error: describeError(err) });
  const line = oneLineError(err, supervisorLogFile(opts.stateDir));
  if (line.code === 'NOT_READY') {
    const fix = `raise --timeout (now ${opts.readyTimeoutMs / 1000} s)`;
    line.hint = line.hint ? `${fix}; ${line.hint}` : fix;
  }
  send({ type: 'error', ...line });
}

const PORT_FLAGS = {
  clickhouseHttpPort: ['ClickHouse HTTP', '--clickhouse-http-port'],
  clickhouseTcpPort: ['ClickHouse TCP', '--clickhouse-tcp-port'],
  kafkaPort: ['Kafka PLAINTEXT', '--kafka-port'],
  kafkaSaslPort: ['Kafka SASL_PLAINTEXT', '--kafka-sasl-port'],
} as const;

/**
 * What can be checked before anything starts: Java for Kafka, and the ports
 * asked for by number (distinct, and free). Failing here leaves nothing to
 * stop, and one server is not started only to be stopped for the other's sake.
 */
async function preflight(opts: SupervisorOptions): Promise<void> {
  const asked = (Object.keys(PORT_FLAGS) as (keyof typeof PORT_FLAGS)[]).filter((k) => opts[k] !== 0);
  for (const [i, k] of asked.entries()) {
    const twin = asked.slice(0, i).find((o) => opts[o] === opts[k]);
    if (twin) {
      throw new WinnowError(
        'CONFIG_INVALID',
        `${PORT_FLAGS[twin][1]} and ${PORT_FLAGS[k][1]} both ask for port ${opts[k]}`,
        {
          hint: 'give each listener its own port, or 0 for any free one',
        },
      );
    }
  }
  await Promise.all([
    checkJava(),
    ...asked.map((k) =>
      assertPortFree(
        opts[k],
        opts.host,
        PORT_FLAGS[k][0],
        `stop whatever listens there (ss -ltnp | grep :${opts[k]}) or choose another port with ${PORT_FLAGS[k][1]}, or 0 for any free one`,
      ),
    ),
  ]);
}

async function main(): Promise<void> {
  const raw = process.env['WINNOW_SUPERVISOR_OPTIONS'];
  if (!raw) throw new WinnowError('USAGE', 'the supervisor is started by `winnow dev up`, not by hand');
  const opts = JSON.parse(raw) as SupervisorOptions;
  const logger = createLogger({ base: { component: 'dev-supervisor' } });

  let clickhouse: RunningClickHouse | undefined;
  let kafka: RunningKafka | undefined;
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const results = await Promise.allSettled([clickhouse?.stop(), kafka?.stop()]);
    for (const r of results) if (r.status === 'rejected') logger.error('stop failed', { err: r.reason });
    await removeDevState(opts.stateDir);
  };
  const onSignal = (signal: string): void => {
    logger.info('stopping', { signal });
    stopAll().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('stop failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => onSignal('SIGHUP'));
  // Until the servers are ready, `winnow dev up` waits on the IPC channel; if it
  // goes away (Ctrl-C, killed), nobody would learn the addresses: stop instead.
  let ready = false;
  process.on('disconnect', () => {
    if (!ready) onSignal('disconnect of winnow dev up');
  });

  await preflight(opts);
  const started = Date.now();
  send({ type: 'progress', message: 'starting ClickHouse and Kafka' });
  send({ type: 'activity', task: 'clickhouse', text: 'starting ClickHouse' });
  send({ type: 'activity', task: 'kafka', text: 'starting Kafka' });
  const [ch, kf] = await Promise.allSettled([
    startEmbeddedClickHouse({
      dataDir: path.join(opts.dataDir, 'clickhouse'),
      logFile: path.join(opts.stateDir, 'logs', 'clickhouse.log'),
      host: opts.host,
      httpPort: opts.clickhouseHttpPort,
      tcpPort: opts.clickhouseTcpPort,
      readyTimeoutMs: opts.readyTimeoutMs,
      // The seen-key index's bloom filter and block cache (dedup.index: rocksdb).
      extraConfig: ROCKSDB_SERVER_CONFIG,
      logger,
    }).then((r) => {
      send({
        type: 'progress',
        message: `ClickHouse ${r.version} ready at ${r.url} (${Date.now() - started} ms)`,
        done: 'clickhouse',
      });
      return r;
    }),
    startEmbeddedKafka({
      dataDir: path.join(opts.dataDir, 'kafka'),
      logFile: path.join(opts.stateDir, 'logs', 'kafka.log'),
      host: opts.host,
      port: opts.kafkaPort,
      saslPort: opts.kafkaSaslPort,
      readyTimeoutMs: opts.readyTimeoutMs,
      logger,
      onDownload: (p) => {
        if (p.doneMs !== undefined) {
          const mb = (p.bytes / 1e6).toFixed(1);
          const message = `Kafka jars downloaded: ${p.files} jars, ${mb} MB in ${(p.doneMs / 1000).toFixed(1)} s`;
          send({ type: 'progress', message, done: 'kafka-jars' });
          return;
        }
        const host = p.from.replace(/^https?:\/\/([^/]+).*$/, '$1');
        send({
          type: 'activity',
          task: 'kafka-jars',
          text: `downloading the Kafka jars from ${host} (first run only):`,
          bytes: p.bytes,
          ...(p.total === undefined ? {} : { total: p.total }),
        });
      },
    }).then((r) => {
      send({
        type: 'progress',
        message: `Kafka ${r.version} ready at ${r.brokers.join(',')} (${Date.now() - started} ms)`,
        done: 'kafka',
      });
      return r;
    }),
  ]);
  if (ch.status === 'fulfilled') clickhouse = ch.value;
  if (kf.status === 'fulfilled') kafka = kf.value;
  const failed = [ch, kf].find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed || !clickhouse || !kafka) {
    await stopAll();
    reportError(
      failed?.reason ?? new WinnowError('INTERNAL', 'a server start neither failed nor succeeded'),
      opts,
      logger,
    );
    process.exit(1);
  }

  const state: DevState = {
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
    stateDir: opts.stateDir,
    clickhouse: {
      url: clickhouse.url,
      host: clickhouse.host,
      httpPort: clickhouse.httpPort,
      tcpPort: clickhouse.tcpPort,
      pid: clickhouse.pid,
      version: clickhouse.version,
      dataDir: clickhouse.dataDir,
      logFile: clickhouse.logFile,
    },
    kafka: {
      brokers: kafka.brokers,
      saslBrokers: kafka.saslBrokers,
      sasl: kafka.sasl,
      pid: kafka.pid,
      version: kafka.version,
      dataDir: kafka.dataDir,
      logFile: kafka.logFile,
    },
  };
  if (stopping) return; // stopped meanwhile; onSignal exits
  await writeDevState(state);
  ready = true;
  send({ type: 'ready', state });
  logger.info('servers ready', { clickhouse: state.clickhouse.url, kafka: state.kafka.brokers });
}

main().catch((err: unknown) => {
  const raw = process.env['WINNOW_SUPERVISOR_OPTIONS'];
  const opts = raw ? (JSON.parse(raw) as SupervisorOptions) : undefined;
  if (opts) {
    reportError(err, opts, createLogger({ base: { component: 'dev-supervisor' } }));
  } else {
    send({ type: 'error', ...oneLineError(err, 'the output of this process') });
    process.stderr.write(`dev supervisor: ${describeError(err)}\n`);
  }
  process.exit(1);
});
