/**
 * Opt-in (--state-live-rate N): after the state phase's sizes, the same
 * pipeline (its seen keys and index as filled) goes live. Consumption is
 * started again on a fresh topic (slices are planned per topic and partition,
 * so the synthetic staged rows' offsets do not collide), the controller runs
 * in its own process, and N events/s are offered for --state-live-seconds:
 * does the pipeline keep up (the live phase's rule), how late do rows become
 * visible (the latency phase's sampling, at the same time), and what do the
 * controller and ClickHouse use meanwhile.
 */
import os from 'node:os';
import type { Ctx } from '../context.ts';
import { fmtInt, median, percentile } from '../context.ts';
import { benchPipeline } from '../pipeline.ts';
import { benchCpu, memoryOf } from '../probe.ts';
import { objectNames, upStatements } from '../../src/provisioning/objects.ts';
import type { Db } from '../../src/clickhouse/client.ts';
import { latency, type LatencyResult } from './latency.ts';
import { step, type LiveStep } from './live.ts';
import { startRig } from './stream.ts';
import { stepStatus } from '../report.ts';

export interface StateLive {
  seenKeysBefore: number;
  offeredRate: number;
  seconds: number;
  step: LiveStep;
  latency: LatencyResult;
  slices: number;
  sliceRowsMedian: number;
  insertMsMedian: number;
  tickMsP99: number;
  /** X-ClickHouse-Summary memory_usage of the slice inserts */
  insertMemoryMedian: number;
  insertMemoryMax: number;
  controllerPeakRss: number;
  clickhouseRss: number;
  othersCpuShare: number;
}

/** The statements that start consumption again (stopConsumption dropped them), for the live topic. */
const CONSUMPTION = ['dead-letter view', 'staging view', 'Kafka queue', 'parsing view'];

export async function stateLive(ctx: Ctx, database: string, seenKeysBefore: number): Promise<StateLive> {
  const { opts, servers } = ctx;
  const rate = opts.stateLiveRate;
  const pipeline = benchPipeline({
    name: 'state',
    database,
    brokers: servers.kafka.brokers,
    topic: 'users_state_live',
    windowMs: opts.windowMs,
    levers: opts.levers,
    clickhouseUrl: servers.clickhouse.url,
    index: opts.index,
  });
  const n = objectNames(pipeline);
  const provision = async (db: Db): Promise<void> => {
    await db.command(`DROP VIEW IF EXISTS ${n.database}.${n.parsedMv} SYNC`);
    for (const s of upStatements(pipeline, { createFinal: true }))
      if (CONSUMPTION.some((c) => s.title.startsWith(c))) await db.command(s.sql);
  };
  ctx.log(
    `state live: ${fmtInt(rate)} events/s offered for ${opts.stateLiveSeconds} s on ${fmtInt(seenKeysBefore)} seen keys`,
  );
  const rig = await startRig(ctx, 'state_live', rate, { pipeline, database, provision });
  const c0 = await benchCpu({ clickhouse: servers.clickhouse.pid, kafka: servers.kafka.pid });
  const t0 = performance.now();
  const first = rig.daemon.slices.length;
  let s: LiveStep;
  let lat: LatencyResult;
  try {
    const latCtx: Ctx = { ...ctx, opts: { ...opts, latencyRate: rate, latencySeconds: opts.stateLiveSeconds } };
    [s, lat] = await Promise.all([step(ctx, rig, rate, opts.stateLiveSeconds, 'state'), latency(latCtx, rig)]);
  } finally {
    rig.producer.setRate(0);
  }
  const c1 = await benchCpu({ clickhouse: servers.clickhouse.pid, kafka: servers.kafka.pid });
  const seconds = (performance.now() - t0) / 1000;
  const clickhouseRss = (await memoryOf(servers.clickhouse.pid)).rss;
  const { maxRss } = await rig.stop();
  const slices = rig.daemon.slices.slice(first);
  const ticks = slices.map((x) => x.tickMs).sort((a, b) => a - b);
  const out: StateLive = {
    seenKeysBefore,
    offeredRate: rate,
    seconds: opts.stateLiveSeconds,
    step: s,
    latency: lat,
    slices: slices.length,
    sliceRowsMedian: median(slices.map((x) => x.rowsIn)),
    insertMsMedian: median(slices.map((x) => x.insertMs)),
    tickMsP99: percentile(ticks, 99),
    insertMemoryMedian: median(slices.map((x) => x.insertMemory)),
    insertMemoryMax: Math.max(0, ...slices.map((x) => x.insertMemory)),
    controllerPeakRss: maxRss,
    clickhouseRss,
    othersCpuShare: Math.max(0, c1.busy - c0.busy - (c1.own - c0.own)) / (seconds * os.cpus().length),
  };
  ctx.log(
    `state live: ${stepStatus(s)}: ${fmtInt(s.achievedRate)} events/s delivered (${fmtInt(rate)} offered), backlog at the end ${fmtInt(s.backlogEnd)}; p99 produce -> visible ${fmtInt(lat.p99Ms)} ms; ${out.slices} slices (median ${fmtInt(out.sliceRowsMedian)} rows, insert ${fmtInt(out.insertMsMedian)} ms, CH memory median ${(out.insertMemoryMedian / 2 ** 20).toFixed(0)} / max ${(out.insertMemoryMax / 2 ** 20).toFixed(0)} MiB); controller peak RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB, ClickHouse RSS ${(clickhouseRss / 2 ** 20).toFixed(0)} MiB; others used ${(out.othersCpuShare * 100).toFixed(0)}%`,
  );
  return out;
}
