/**
 * The API's dependencies in a running daemon (`winnow run`): statistics from
 * ClickHouse and Kafka, slices and consistency reports from the daemon, replay
 * jobs queued behind the bearer token (the lease holder runs them), and the readiness checks.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Db } from '../clickhouse/client.ts';
import { resolveSecret } from '../config/load.ts';
import type { PipelineConfig } from '../config/schema.ts';
import type { Daemon } from '../daemon/daemon.ts';
import { describeError, withoutRowValues, WinnowError } from '../errors.ts';
import type { KafkaAdmins } from '../kafka/admins.ts';
import type { Logger } from '../log.ts';
import { Checker } from '../operations/checker.ts';
import { summarizeCheck } from '../operations/check-summary.ts';
import { deadLetterReasons, listDeadLetters } from '../operations/deadletters.ts';
import { pipelineHistory } from '../operations/history.ts';
import { configFingerprint, jobStatus, ReplayJobs } from '../operations/replay-jobs.ts';
import { checkBound, replayBound } from '../operations/replay.ts';
import { pendingRows, pipelineStats } from '../operations/stats.ts';
import { objectNames } from '../provisioning/objects.ts';
import type { AppDeps, Readiness } from './deps.ts';

export interface LiveSources {
  pipelines: { pipeline: PipelineConfig; db: Db }[];
  daemon: Daemon;
  admins: KafkaAdmins;
  logger: Logger;
}

/** Throws UNAUTHORIZED unless `bearer` is the pipeline's api.replayToken (compared in constant time). */
function checkBearer(p: PipelineConfig, bearer: string | undefined): void {
  const configured = p.api.replayToken;
  if (configured === undefined) {
    throw new WinnowError(
      'UNAUTHORIZED',
      'replay over HTTP is off for this pipeline: set api.replayToken in the configuration',
    );
  }
  const token = Buffer.from(resolveSecret(configured, process.env, `pipelines.${p.name}.api.replayToken`));
  const given = Buffer.from(bearer ?? '');
  if (given.length !== token.length || !timingSafeEqual(given, token)) {
    throw new WinnowError('UNAUTHORIZED', 'replay needs `Authorization: Bearer <api.replayToken>`');
  }
}

export function liveDeps({ pipelines, daemon, admins, logger }: LiveSources): AppDeps {
  const runner = (name: string) => {
    const r = daemon.runner(name);
    if (!r) throw new WinnowError('NOT_FOUND', `no pipeline named "${name}"`);
    return r;
  };
  return {
    pipelines: () =>
      pipelines.map(({ pipeline: p }) => ({
        name: p.name,
        topics: p.source.topics,
        table: p.sink.table,
        database: p.sink.database,
        windowMs: p.dedup.windowMs,
        key: p.dedup.key,
      })),
    async stats(name) {
      const h = pipelines.find((x) => x.pipeline.name === name);
      if (!h) throw new WinnowError('NOT_FOUND', `no pipeline named "${name}"`);
      const offsets = await admins.offsets(h.pipeline).catch((err: unknown) => {
        logger.warn('kafka offsets unavailable', { pipeline: name, error: describeError(err) });
        return undefined;
      });
      return pipelineStats(h.db, h.pipeline, offsets, daemon.runner(name)?.lastError ?? null);
    },
    async slices(name, limit) {
      return runner(name).processor.checkpoints.recent(name, limit);
    },
    async consistency(name) {
      const r = runner(name);
      return r.lastCheck ?? (await Checker.latest(r.db, r.pipeline));
    },
    async replay(name, body, bearer) {
      const r = runner(name);
      checkBearer(r.pipeline, bearer);
      const from =
        body.fromOffsets !== undefined
          ? replayBound(body.fromOffsets, 'offsets')
          : replayBound(body.fromTimestamp ?? '', 'timestamp');
      const to = body.to === undefined ? undefined : replayBound(body.to, from.kind);
      for (const b of [from, ...(to ? [to] : [])]) checkBound(r.pipeline, b);
      // Queued for whichever daemon holds the pipeline (this one or another): it runs it between slices.
      const fingerprint = configFingerprint(r.pipeline);
      const request = { kind: 'replay' as const, from, ...(to ? { to } : {}), fingerprint };
      const job = await new ReplayJobs(r.db, r.pipeline).enqueue(request, 'api');
      logger.info('replay job queued', { pipeline: name, job: job.jobId, by: 'api' });
      return jobStatus(job);
    },
    async replayJob(name, id) {
      const r = runner(name);
      const job = await new ReplayJobs(r.db, r.pipeline).get(id);
      if (!job) throw new WinnowError('NOT_FOUND', `pipeline ${name} has no replay job ${JSON.stringify(id)}`);
      return jobStatus(job);
    },
    async history(name, minutes) {
      const r = runner(name);
      return pipelineHistory(r.db, r.pipeline, minutes, await pendingRows(r.db, r.pipeline));
    },
    async deadLetters(name, limit) {
      const r = runner(name);
      const [reasons, list] = await Promise.all([
        deadLetterReasons(r.db, r.pipeline, limit),
        listDeadLetters(r.db, r.pipeline, limit),
      ]);
      // Reasons may quote a refused row's values (ClickHouse's message): those stay out, as in the logs.
      return {
        total: list.total,
        reasons: reasons.map((x) => ({ ...x, error: withoutRowValues(x.error) })),
        recent: list.letters.map((l) => ({
          topic: l.topic,
          partition: l.partition,
          offset: l.offset,
          ingestedAt: l.ingestedAt,
          error: withoutRowValues(l.error),
        })),
      };
    },
    async checks(name, limit) {
      const r = runner(name);
      return (await Checker.recent(r.db, r.pipeline, limit)).map(summarizeCheck);
    },
    async replays(name, limit) {
      const r = runner(name);
      return (await new ReplayJobs(r.db, r.pipeline).recent(limit)).map(jobStatus);
    },
    async readiness() {
      const checks: Readiness['checks'] = {};
      const health: NonNullable<Readiness['pipelines']> = {};
      await Promise.all(
        daemon.runners.map(async (r) => {
          const name = r.pipeline.name;
          const n = objectNames(r.pipeline);
          try {
            const rows = await r.db.rows<{ n: string }>(
              'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}',
              { db: n.database, t: n.kept },
            );
            if (Number(rows[0]?.n ?? 0) === 0)
              checks[`${name}.migrated`] = { ok: false, error: 'not migrated: run winnow migrate up' };
            else checks[`${name}.clickhouse`] = { ok: true };
          } catch (err) {
            checks[`${name}.clickhouse`] = { ok: false, error: withoutRowValues(describeError(err)) };
          }
          // Processing, or standing by healthy: ready. Failing (a lease claim or a slice), or not started: not.
          const h = r.health();
          health[name] = h;
          checks[`${name}.slices`] =
            h.state === 'failing'
              ? { ok: false, error: `failing: ${h.error ? `${h.error.class}: ${h.error.message}` : 'unknown error'}` }
              : h.state === 'starting'
                ? { ok: false, error: 'starting: the lease has not been read yet' }
                : { ok: true };
          try {
            await admins.offsets(r.pipeline);
            checks[`${name}.kafka`] = { ok: true };
          } catch (err) {
            checks[`${name}.kafka`] = { ok: false, error: `Kafka: ${describeError(err)}` };
          }
        }),
      );
      return { ready: Object.values(checks).every((c) => c.ok), checks, pipelines: health };
    },
  };
}
