/**
 * The process behind `winnow dev up`: it owns the embedded ClickHouse and the
 * local Kafka broker, so they outlive the command that started them, and it
 * stops both cleanly on SIGTERM (`winnow dev down`). It talks to the command
 * that spawned it over the IPC channel until both servers are ready.
 */
import { describeError, WinnowError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { startEmbeddedClickHouse, type RunningClickHouse } from './clickhouse.ts';
import { startEmbeddedKafka, type RunningKafka } from './kafka.ts';
import { removeDevState, writeDevState, type DevState } from './dev-state.ts';
import path from 'node:path';

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
  | { type: 'progress'; message: string }
  | { type: 'ready'; state: DevState }
  | { type: 'error'; message: string; code: string };

function send(msg: SupervisorMessage): void {
  if (process.send && process.connected) process.send(msg);
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

  const started = Date.now();
  send({ type: 'progress', message: 'starting ClickHouse and Kafka' });
  const [ch, kf] = await Promise.allSettled([
    startEmbeddedClickHouse({
      dataDir: path.join(opts.dataDir, 'clickhouse'),
      logFile: path.join(opts.stateDir, 'logs', 'clickhouse.log'),
      host: opts.host,
      httpPort: opts.clickhouseHttpPort,
      tcpPort: opts.clickhouseTcpPort,
      readyTimeoutMs: opts.readyTimeoutMs,
      logger,
    }).then((r) => {
      send({ type: 'progress', message: `ClickHouse ${r.version} ready at ${r.url} (${Date.now() - started} ms)` });
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
    }).then((r) => {
      send({ type: 'progress', message: `Kafka ${r.version} ready at ${r.brokers.join(',')} (${Date.now() - started} ms)` });
      return r;
    }),
  ]);
  if (ch.status === 'fulfilled') clickhouse = ch.value;
  if (kf.status === 'fulfilled') kafka = kf.value;
  const failed = [ch, kf].find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed || !clickhouse || !kafka) {
    await stopAll();
    const err: unknown = failed?.reason;
    send({ type: 'error', message: describeError(err), code: err instanceof WinnowError ? err.code : 'INTERNAL' });
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
  await writeDevState(state);
  send({ type: 'ready', state });
  logger.info('servers ready', { clickhouse: state.clickhouse.url, kafka: state.kafka.brokers });
}

main().catch((err: unknown) => {
  send({ type: 'error', message: describeError(err), code: err instanceof WinnowError ? err.code : 'INTERNAL' });
  process.stderr.write(`dev supervisor: ${describeError(err)}\n`);
  process.exit(1);
});
