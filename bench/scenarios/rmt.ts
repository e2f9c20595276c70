/**
 * Baseline (a): what ClickHouse offers out of the box. Kafka engine ->
 * materialized view -> ReplacingMergeTree ORDER BY event_id. Rows are visible
 * at once but duplicates go only at merge time, so an exact answer needs
 * FINAL (or OPTIMIZE ... FINAL); there is no window either.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, waitUntil } from '../context.ts';
import { count, diskUsage } from '../pipeline.ts';
import type { Preloaded } from './preload.ts';
import { groupLag } from '../load.ts';

const GROUP = 'bench_rmt';

export interface RmtResult {
  seconds: number;
  eventsPerSecond: number;
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  rowsBeforeMerge: number;
  countFinalMs: number;
  countFinal: number;
  countFinalMemory: number;
  optimizeFinalMs: number;
  rowsAfterOptimize: number;
  disk: Record<string, { bytes: number; rows: number; parts: number }>;
}

export async function rmtBaseline(ctx: Ctx, pre: Preloaded): Promise<RmtResult> {
  const { servers, opts } = ctx;
  const db = servers.db();
  const d = 'bench_rmt';
  await db.command(`CREATE DATABASE IF NOT EXISTS ${d}`);
  await db.command(`CREATE TABLE ${d}.users_dedup (event_id UUID, user_id UUID, name String, email String, created_at DateTime)
    ENGINE = ReplacingMergeTree ORDER BY event_id`);
  await db.command(`CREATE TABLE ${d}.users_queue (event_id UUID, user_id UUID, user_name String, user_email String, created_at String)
    ENGINE = Kafka SETTINGS kafka_broker_list = '${servers.kafka.brokers.join(',')}', kafka_topic_list = '${pre.topic}',
      kafka_group_name = '${GROUP}', kafka_format = 'JSONEachRow', kafka_num_consumers = ${opts.levers.consumers}`);
  const cpu = ctx.cpu();
  await cpu.begin();
  const started = performance.now();
  try {
    await db.command(`CREATE MATERIALIZED VIEW ${d}.users_mv TO ${d}.users_dedup AS
      SELECT event_id, user_id, user_name AS name, user_email AS email, parseDateTimeBestEffort(created_at) AS created_at FROM ${d}.users_queue`);
    // Merges may already have removed duplicates, so the row count cannot say when all arrived; the
    // Kafka engine commits after the views wrote a block, so the group's lag can.
    const kafka = servers.kafkaClient('bench-rmt-lag');
    await waitUntil(
      'the ReplacingMergeTree to receive every message',
      () => groupLag(kafka, GROUP, pre.topic),
      (lag) => lag === 0,
      {
        timeoutMs: Math.max(180_000, (pre.events / 5_000) * 1000),
        everyMs: 100,
        progress: (lag, s) =>
          ctx.log(`rmt: ${s.toFixed(0)} s, ${fmtInt(pre.events - lag)} / ${fmtInt(pre.events)} messages written`),
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = await cpu.seconds();
    await db.command(`DROP VIEW ${d}.users_mv SYNC`);
    await db.command(`DROP TABLE ${d}.users_queue SYNC`);
    const rowsBeforeMerge = await count(db, `${d}.users_dedup`);
    const t1 = performance.now();
    const cf = await db.command(`SELECT count() FROM ${d}.users_dedup FINAL FORMAT Null`);
    const countFinalMs = performance.now() - t1;
    const countFinal = await count(db, `${d}.users_dedup FINAL`);
    const disk = await diskUsage(db, d);
    const t2 = performance.now();
    await db.command(`OPTIMIZE TABLE ${d}.users_dedup FINAL`);
    const optimizeFinalMs = performance.now() - t2;
    const result: RmtResult = {
      seconds,
      eventsPerSecond: pre.events / seconds,
      cpuSeconds,
      eventsPerCpuSecond: pre.events / cpuSeconds,
      rowsBeforeMerge,
      countFinalMs,
      countFinal,
      countFinalMemory: cf.memoryBytes,
      optimizeFinalMs,
      rowsAfterOptimize: await count(db, `${d}.users_dedup`),
      disk,
    };
    ctx.log(
      `rmt: ${fmtInt(result.eventsPerSecond)} events/s; count() FINAL ${countFinalMs.toFixed(0)} ms, OPTIMIZE FINAL ${optimizeFinalMs.toFixed(0)} ms`,
    );
    return result;
  } finally {
    await db
      .command(`DROP VIEW IF EXISTS ${d}.users_mv SYNC`)
      .catch((err: unknown) => ctx.log(`rmt: cleanup: ${String(err)}`));
    await db
      .command(`DROP TABLE IF EXISTS ${d}.users_queue SYNC`)
      .catch((err: unknown) => ctx.log(`rmt: cleanup: ${String(err)}`));
  }
}
