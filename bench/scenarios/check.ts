/**
 * The consistency check's cost against table size (issue 9). At each of
 * --check-sizes final rows (staging, seen keys and one committed slice record
 * to match, filled with SQL), the pipeline processes --check-traffic new rows
 * in slices of --slice-rows, then:
 *   - the incremental check the daemon runs every checkInterval (what changed
 *     since the last consistent check), timed. Its cost is stated against the
 *     slices' time for the same rows (check / slices: the share of the
 *     pipeline's own work the check adds; target < 5% at 100M final rows),
 *     and against the check interval (1 minute by default, --check-traffic
 *     rows being a minute of the stream);
 *   - the full check (`winnow check --full`), up to --check-full-max rows.
 * Kafka offsets are not consulted (the incremental part of that is one range
 * scan of staging per partition).
 */
import type { Ctx } from '../context.ts';
import { fmtInt } from '../context.ts';
import { benchPipeline, count, migrate, stopConsumption } from '../pipeline.ts';
import { createTopic } from '../load.ts';
import { Checker, checksSql } from '../../src/operations/checker.ts';
import { Checkpoints } from '../../src/slicing/checkpoints.ts';
import { objectNames } from '../../src/provisioning/objects.ts';
import { Processor } from '../../src/slicing/processor.ts';

export interface CheckCost {
  finalRows: number;
  fillSeconds: number;
  trafficRows: number;
  slices: number;
  slicesMs: number;
  incrementalMs: number;
  incrementalOk: boolean;
  /** incremental check time over the slices' time for the same rows: the check's cost as a share of the pipeline's work (target < 5%) */
  checkToSlices: number;
  /** incremental check time over the check interval */
  shareOfInterval: number;
  /** how the incremental check proved completeness and seen vs final ('counts': no per-key final-table lookup) */
  proof: string;
  /** what each part of the incremental check took */
  stepsMs: Record<string, number>;
  fullMs: number | null;
  fullOk: boolean | null;
}

export interface CheckResult {
  checkIntervalMs: number;
  costs: CheckCost[];
}

const uuidOf = (k: string): string =>
  `reinterpretAsUUID(concat(reinterpretAsString(sipHash64(7, ${k})), reinterpretAsString(sipHash64(7, ${k}, 1))))`;

export async function checkCost(ctx: Ctx): Promise<CheckResult> {
  const { opts, servers } = ctx;
  const db = servers.db();
  const parts = opts.partitions;
  const result: CheckResult = { checkIntervalMs: 60_000, costs: [] };
  for (const size of opts.checkSizes) {
    const database = `bench_check_${size}`;
    const topic = `users_check_${size}`;
    await createTopic(servers.kafkaClient('bench-check'), topic, parts);
    const p = benchPipeline({
      name: 'check',
      database,
      brokers: servers.kafka.brokers,
      topic,
      windowMs: opts.windowMs,
      levers: { ...opts.levers, maxSliceRows: opts.sliceRows },
      clickhouseUrl: servers.clickhouse.url,
    });
    const n = objectNames(p);
    await migrate(db, p, opts.levers);
    await stopConsumption(db, p);
    ctx.log(`check: filling ${fmtInt(size)} processed rows (staging, seen keys, final table)`);
    const t0 = performance.now();
    // Keys spread over the last window, as a day of traffic's final rows whose newest window is still in the seen keys.
    const rows = `SELECT ${uuidOf('number')} AS event_id, generateUUIDv4(number) AS user_id, concat('user', toString(number % 100000)) AS name,
        concat('user', toString(number % 100000), '@example.com') AS email, toDateTime(now()) AS created_at,
        now64(3) - toIntervalMillisecond(${Math.floor(opts.windowMs * 0.9)} - intDiv(number * ${Math.floor(opts.windowMs * 0.9)}, ${size})) AS __t,
        toUInt32(number % ${parts}) AS _partition, intDiv(number, ${parts}) AS _offset
      FROM numbers(${size})`;
    const big = { max_insert_threads: '2', max_block_size: '1048576' };
    await db.command(
      `INSERT INTO ${database}.${n.staging} (event_id, user_id, name, email, created_at, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       SELECT event_id, user_id, name, email, created_at, __t, '${topic}', _partition, _offset, __t, __t FROM (${rows})`,
      {},
      big,
    );
    await db.command(
      `INSERT INTO ${database}.${n.final} (event_id, user_id, name, email, created_at) SELECT event_id, user_id, name, email, created_at FROM (${rows})`,
      {},
      big,
    );
    await db.command(
      `INSERT INTO ${database}.${n.seen} (event_id, __t, __slice) SELECT event_id, __t, 'prefill' FROM (${rows})`,
      {},
      big,
    );
    const perPartition = Math.ceil(size / parts);
    const ranges = Array.from({ length: parts }, (_x, i) => ({
      topic,
      partition: i,
      fromOffset: 0,
      toOffset: perPartition - 1,
    }));
    const now = new Date().toISOString();
    await new Checkpoints(db, database).record({
      pipeline: p.name,
      seq: 1,
      sliceId: 'prefill',
      status: 'committed',
      ranges,
      nextOffsets: ranges.map((r) => ({ topic, partition: r.partition, offset: perPartition })),
      rowsIn: size,
      inserted: size,
      duplicates: 0,
      rejected: 0,
      plannedAt: now,
      committedAt: now,
      durationMs: 0,
    });
    const fillSeconds = (performance.now() - t0) / 1000;
    const checker = new Checker(db, p);
    let fullMs: number | null = null;
    let fullOk: boolean | null = null;
    if (size <= opts.checkFullMax) {
      const f = await checker.run({ repair: true, full: true });
      fullMs = f.durationMs;
      fullOk = f.ok;
      ctx.log(
        `check: full check at ${fmtInt(size)} final rows: ${fmtInt(fullMs)} ms (${f.ok ? 'consistent' : 'NOT consistent'})`,
      );
    } else {
      // Too big to wait for a full check here: the incremental one starts from a consistent report, as a daemon's would.
      const report = {
        scope: {
          mode: 'full',
          fromSeq: 0,
          toSeq: 1,
          slices: 1,
          replayChunks: 0,
          startedAt: now.replace('T', ' ').replace('Z', ''),
        },
        offsets: { checked: false, partitions: [] },
      };
      const q = checksSql.record(database, p.name, true, JSON.stringify(report));
      await db.command(q.sql, q.params);
    }
    // A check interval's traffic: new keys, processed by the pipeline's own slices.
    const traffic = Math.ceil(opts.checkTraffic / parts) * parts;
    await db.command(
      `INSERT INTO ${database}.${n.staging} (event_id, user_id, name, email, created_at, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       SELECT ${uuidOf(`number + ${size}`)}, generateUUIDv4(number), 'new', 'new@example.com', toDateTime(now()), now64(3), '${topic}',
         toUInt32(number % ${parts}), ${perPartition} + intDiv(number, ${parts}), now64(3), now64(3)
       FROM numbers(${traffic})`,
    );
    const proc = new Processor(db, p);
    const s0 = performance.now();
    let slices = 0;
    while (await proc.runOneSlice()) slices++;
    const slicesMs = performance.now() - s0;
    const inc = await checker.run({ repair: true });
    const cost: CheckCost = {
      finalRows: await count(db, `${database}.${n.final}`),
      fillSeconds,
      trafficRows: traffic,
      slices,
      slicesMs,
      incrementalMs: inc.durationMs,
      incrementalOk: inc.ok && inc.scope.mode === 'incremental',
      checkToSlices: inc.durationMs / slicesMs,
      shareOfInterval: inc.durationMs / result.checkIntervalMs,
      proof: inc.proof,
      stepsMs: inc.stepsMs,
      fullMs,
      fullOk,
    };
    result.costs.push(cost);
    ctx.log(
      `check: incremental check at ${fmtInt(cost.finalRows)} final rows after ${slices} slices (${fmtInt(traffic)} rows, ${fmtInt(slicesMs)} ms): ${fmtInt(cost.incrementalMs)} ms = ${(cost.checkToSlices * 100).toFixed(1)}% of those slices' time, ${(cost.shareOfInterval * 100).toFixed(2)}% of a 1-minute check interval (${inc.scope.mode}, proof by ${inc.proof}, ${inc.ok ? 'consistent' : 'NOT consistent'}); steps: ${Object.entries(
        inc.stepsMs,
      )
        .map(([k, v]) => `${k} ${fmtInt(v)}`)
        .join(', ')} ms`,
    );
    await db.command(`DROP DATABASE IF EXISTS ${database} SYNC`);
  }
  return result;
}
