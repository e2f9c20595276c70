import { timingSafeEqual } from 'node:crypto';
import { resolveSecret } from '../config/load.ts';
import { describeError, WinnowError } from '../errors.ts';
import { kafkaFor } from '../kafka/client.ts';
import { Checker } from '../operations/checker.ts';
import { Replayer } from '../operations/replay.ts';
import { createLogger } from '../log.ts';
import { Daemon } from '../daemon/daemon.ts';
import { faultHooks } from '../slicing/faults.ts';
import { objectNames } from '../provisioning/objects.ts';
import { pipelineStats } from '../operations/stats.ts';
import { buildApp } from '../server/app.ts';
import type { AppDeps } from '../server/deps.ts';
import { parseFlags, parsePort, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, configPath, KafkaAdmins, load, replayBound } from './context.ts';

const help = `Usage: winnow run [--config FILE] [--port N] [--host ADDR]

The controller daemon. Every pipeline in the file gets a tick (schedule.interval);
each tick takes the next slice of staged rows (per-partition offset ranges),
inserts its first occurrences whose key was not seen within the window into the
final table, and records the slice. Serves the HTTP API meanwhile. SIGTERM or
Ctrl-C finishes the slice in flight, then exits 0.

Options:
  ${CONFIG_FLAG_HELP}
  --port N        HTTP API port        (default: server.port of the file, 8080; 0 = any free port)
  --host ADDR     HTTP API address     (default 127.0.0.1)

Environment: WINNOW_LOG_LEVEL        debug | info | warn | error (default info)
             WINNOW_LEASE_EPOCH_MS  lease epoch (default 15000): one daemon processes a pipeline;
                                    a standby takes over within two epochs of the holder's death
             WINNOW_FAULT           testing only: <step>@<slice seq> kills the daemon at that step

API: GET /healthz, /readyz, /api/v1/pipelines, /api/v1/pipelines/:name/stats,
     /api/v1/pipelines/:name/slices?limit=N, /metrics, /api/v1/openapi.json`;

const flags = {
  config: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
} as const;

export const runCommand: Command = {
  name: 'run',
  summary: 'run the controller daemon and its HTTP API',
  help,
  async run(args) {
    const { values, positionals } = parseFlags('run', args, flags, false);
    void positionals;
    const level = process.env['WINNOW_LOG_LEVEL'] ?? 'info';
    if (!['debug', 'info', 'warn', 'error'].includes(level)) {
      throw new WinnowError('USAGE', `WINNOW_LOG_LEVEL must be debug, info, warn or error, got "${level}"`);
    }
    const logger = createLogger({ level: level as 'info' });
    const loaded = await load(configPath(values.config));
    const port = parsePort('run', 'port', values.port, loaded.config.server.port);
    const admins = new KafkaAdmins();
    const handles = loaded.pipelines.map((h) => ({ ...h, kafka: { client: kafkaFor(h.pipeline), offsets: () => admins.offsets(h.pipeline) } }));
    const daemon = new Daemon(handles, logger, faultHooks(process.env['WINNOW_FAULT']));

    const deps: AppDeps = {
      pipelines: () =>
        loaded.pipelines.map(({ pipeline: p }) => ({
          name: p.name,
          topics: p.source.topics,
          table: p.sink.table,
          database: p.sink.database,
          windowMs: p.dedup.windowMs,
          key: p.dedup.key,
        })),
      async stats(name) {
        const h = loaded.pipelines.find((x) => x.pipeline.name === name);
        if (!h) throw new WinnowError('NOT_FOUND', `no pipeline named "${name}"`);
        const offsets = await admins.offsets(h.pipeline).catch((err: unknown) => {
          logger.warn('kafka offsets unavailable', { pipeline: name, error: describeError(err) });
          return undefined;
        });
        return pipelineStats(h.db, h.pipeline, offsets, daemon.runner(name)?.lastError ?? null);
      },
      async slices(name, limit) {
        const r = daemon.runner(name);
        if (!r) throw new WinnowError('NOT_FOUND', `no pipeline named "${name}"`);
        return r.processor.checkpoints.recent(name, limit);
      },
      async consistency(name) {
        const r = daemon.runner(name);
        if (!r) throw new WinnowError('NOT_FOUND', `no pipeline named "${name}"`);
        return r.lastCheck ?? (await Checker.latest(r.db, r.pipeline));
      },
      async replay(name, body, bearer) {
        const r = daemon.runner(name);
        if (!r) throw new WinnowError('NOT_FOUND', `no pipeline named "${name}"`);
        const configured = r.pipeline.api.replayToken;
        if (configured === undefined) throw new WinnowError('UNAUTHORIZED', 'replay over HTTP is off for this pipeline: set api.replayToken in the configuration');
        const token = Buffer.from(resolveSecret(configured, process.env, `pipelines.${name}.api.replayToken`));
        const given = Buffer.from(bearer ?? '');
        if (given.length !== token.length || !timingSafeEqual(given, token)) throw new WinnowError('UNAUTHORIZED', 'replay needs `Authorization: Bearer <api.replayToken>`');
        const from = body.fromOffsets !== undefined ? replayBound(body.fromOffsets, 'offsets') : replayBound(body.fromTimestamp ?? '', 'timestamp');
        const to = body.to === undefined ? undefined : replayBound(body.to, from.kind);
        if (!(await r.holdsLease())) throw new WinnowError('CONFLICT', `another daemon (${r.lease.holder ?? 'unknown'}) processes pipeline ${name}; send the replay to it`);
        const admin = await admins.admin(r.pipeline).catch(() => undefined);
        return r.exclusive(() =>
          new Replayer(r.db, r.pipeline, admin, (line) => logger.info('replay progress', { pipeline: name, progress: line })).run({
            from,
            ...(to ? { to } : {}),
            reason: 'api',
          }),
        );
      },
      async readiness() {
        const checks: Record<string, { ok: boolean; error?: string }> = {};
        await Promise.all(
          daemon.runners.map(async (r) => {
            const n = objectNames(r.pipeline);
            try {
              const rows = await r.db.rows<{ n: string }>('SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}', {
                db: n.database,
                t: n.kept,
              });
              if (Number(rows[0]?.n ?? 0) === 0) checks[`${r.pipeline.name}.migrated`] = { ok: false, error: 'not migrated: run winnow migrate up' };
              else checks[`${r.pipeline.name}.clickhouse`] = { ok: true };
            } catch (err) {
              checks[`${r.pipeline.name}.clickhouse`] = { ok: false, error: describeError(err) };
            }
            checks[`${r.pipeline.name}.slices`] = r.lastError ? { ok: false, error: r.lastError } : { ok: true };
            try {
              await admins.offsets(r.pipeline);
              checks[`${r.pipeline.name}.kafka`] = { ok: true };
            } catch (err) {
              checks[`${r.pipeline.name}.kafka`] = { ok: false, error: `Kafka: ${describeError(err)}` };
            }
          }),
        );
        return { ready: Object.values(checks).every((c) => c.ok), checks };
      },
    };

    // Refuse to start where a token-reliant write could silently lose its deduplication.
    for (const r of daemon.runners) {
      try {
        await r.verifyDeduplication();
      } catch (err) {
        if (err instanceof WinnowError && err.code === 'DEDUP_UNSAFE') {
          await admins.close();
          await loaded.close();
          throw err;
        }
        logger.warn('insert deduplication not verified yet: will verify before the first slice', { pipeline: r.pipeline.name, error: describeError(err) });
      }
    }

    const app = buildApp(deps);
    const address = await app.listen({ port, host: values.host ?? '127.0.0.1' });
    logger.info('winnow running', { api: address, pipelines: loaded.pipelines.map((p) => p.pipeline.name) });
    daemon.start();

    await new Promise<void>((resolve) => {
      const onSignal = (signal: string): void => {
        logger.info('stopping: finishing the slice in flight', { signal });
        resolve();
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
    });
    await daemon.stop();
    await app.close();
    await admins.close();
    await loaded.close();
    logger.info('stopped');
    return 0;
  },
};
