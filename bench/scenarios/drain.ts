/**
 * Drain: the topic is pre-loaded; migrate (which starts consumption) and run
 * the controller until the last row is visible in the final table.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, median, waitUntil } from '../context.ts';
import { startDaemon, type SliceReport } from '../daemon.ts';
import { benchPipeline, count, diskUsage, migrate, stopConsumption } from '../pipeline.ts';
import type { Preloaded } from './preload.ts';

export interface DrainResult {
  events: number;
  unique: number;
  seconds: number;
  eventsPerSecond: number;
  /** when staging held every message (the Kafka engine's part), s */
  stagedSeconds: number;
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  migrateMs: number;
  slices: number;
  sliceRowsMedian: number;
  /** staged rows/s of the slice inserts alone, while consumption ran alongside */
  insertRowsPerSecond: number;
  insertMemoryMax: number;
  insertMemoryMedian: number;
  /** ms per slice spent outside the insert (planning, checkpoints, counts) */
  overheadMsMedian: number;
  daemonPeakRss: number;
  finalRows: number;
  staged: number;
  deadLetters: number;
  duplicateKeysInFinal: number;
  disk: Record<string, { bytes: number; rows: number; parts: number }>;
  errors: string[];
}

export function sliceSummary(
  slices: SliceReport[],
): Pick<
  DrainResult,
  'slices' | 'sliceRowsMedian' | 'insertRowsPerSecond' | 'insertMemoryMax' | 'insertMemoryMedian' | 'overheadMsMedian'
> {
  const rows = slices.reduce((a, s) => a + s.rowsIn, 0);
  const insertMs = slices.reduce((a, s) => a + s.insertMs, 0);
  return {
    slices: slices.length,
    sliceRowsMedian: median(slices.map((s) => s.rowsIn)),
    insertRowsPerSecond: insertMs > 0 ? rows / (insertMs / 1000) : NaN,
    insertMemoryMax: Math.max(0, ...slices.map((s) => s.insertMemory)),
    insertMemoryMedian: median(slices.map((s) => s.insertMemory)),
    overheadMsMedian: median(slices.map((s) => s.tickMs - s.insertMs)),
  };
}

export async function drain(ctx: Ctx, pre: Preloaded): Promise<DrainResult> {
  const { opts, servers } = ctx;
  const database = 'bench_drain';
  const p = benchPipeline({
    name: 'drain',
    database,
    brokers: servers.kafka.brokers,
    topic: pre.topic,
    windowMs: opts.windowMs,
    levers: opts.levers,
    clickhouseUrl: servers.clickhouse.url,
  });
  const db = servers.db();
  const staging = `${database}.winnow_drain_staging`;
  const final = `${database}.users_dedup`;
  let daemon: ReturnType<typeof startDaemon> | undefined;
  const cpu = ctx.cpu(() => (daemon ? [daemon.pid] : []));
  await cpu.begin();
  const started = performance.now();
  try {
    const migrateMs = await migrate(db, p, opts.levers);
    daemon = startDaemon(
      { url: servers.clickhouse.url, pipeline: p, insertSettings: opts.levers.insert, tickMs: opts.levers.tickMs },
      (e) => ctx.log(`drain: controller error: ${e}`),
    );
    let stagedAt = NaN;
    const d = daemon;
    await waitUntil(
      'the final table to hold every distinct key',
      async () => {
        const [staged, finalRows] = await Promise.all([count(db, staging), count(db, final)]);
        if (Number.isNaN(stagedAt) && staged >= pre.events) stagedAt = performance.now();
        return { staged, finalRows, processed: d.processed() };
      },
      (v) => v.finalRows >= pre.unique && v.processed >= pre.events,
      {
        timeoutMs: Math.max(180_000, (pre.events / 5_000) * 1000),
        everyMs: 100,
        progress: (v, s) =>
          ctx.log(
            `drain: ${s.toFixed(0)} s, staged ${fmtInt(v.staged)}, processed ${fmtInt(v.processed)}, final ${fmtInt(v.finalRows)} / ${fmtInt(pre.unique)}`,
          ),
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = await cpu.seconds();
    const stopped = await daemon.stop();
    const dup = await db.rows<{ d: string }>(`SELECT count() - uniqExact(event_id) AS d FROM ${final}`);
    const result: DrainResult = {
      events: pre.events,
      unique: pre.unique,
      seconds,
      eventsPerSecond: pre.events / seconds,
      stagedSeconds: (stagedAt - started) / 1000,
      cpuSeconds,
      eventsPerCpuSecond: pre.events / cpuSeconds,
      migrateMs,
      ...sliceSummary(daemon.slices),
      daemonPeakRss: Math.max(stopped.maxRss, daemon.peakRss()),
      finalRows: await count(db, final),
      staged: await count(db, staging),
      deadLetters: await count(db, `${database}.winnow_drain_errors`),
      duplicateKeysInFinal: Number(dup[0]?.d ?? 0),
      disk: await diskUsage(db, database),
      errors: daemon.errors,
    };
    ctx.log(`drain: ${fmtInt(result.eventsPerSecond)} events/s (${seconds.toFixed(1)} s), ${result.slices} slices`);
    return result;
  } finally {
    await daemon?.stop();
    // Stop consuming, so later phases have the machine to themselves.
    await stopConsumption(db, p).catch((err: unknown) => ctx.log(`drain: could not stop consumption: ${String(err)}`));
  }
}
