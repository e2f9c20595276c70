/**
 * Why one file over 300 lines: the state phase's rig (stage, settle, storage) and its per-size measurement
 * share one pipeline and one result; the fill's SQL is in state-fill.ts, going live in state-live.ts.
 *
 * The dedup stage alone, against seen-keys state of a given size: staging and
 * the seen keys are filled directly with SQL (keys derived from a hash, so
 * duplicates are exact), then the Processor runs its slices and only the slice
 * inserts are timed.
 *   - per-slice cost: slices of --slice-rows rows at each --state-sizes size;
 *   - dedup-stage throughput: --dedup-rows staged rows at --dedup-seen keys,
 *     in slices of maxSliceRows.
 * Staged rows: 5% repeat a seen key, 5% repeat a key of the same batch.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, median, sleep } from '../context.ts';
import { instrument, type QueryStat } from '../probe.ts';
import { benchPipeline, count, diskUsage, migrate, stopConsumption } from '../pipeline.ts';
import { createTopic } from '../load.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { objectNames } from '../../src/provisioning/objects.ts';
import type { Db } from '../../src/clickhouse/client.ts';
import { kvDir, liveSlices, sstFiles, type LiveSlices } from './index-live.ts';
import { benchCpu } from '../probe.ts';
import { stateLive, type StateLive } from './state-live.ts';
import os from 'node:os';
import { fillIndexOptimized, fillIndexSorted, fillSeen, sizeThatFits, SEEN_SEED, uuidOf } from './state-fill.ts';
import { rebuildIndex, type IndexRebuild } from './index-rebuild.ts';
import { filterProbe, type FilterProbe } from './state-filter.ts';
import { holdMemory, type MemoryHold } from '../memory-hold.ts';

export interface SliceCost {
  seenKeys: number;
  seenParts: number;
  sliceRows: number;
  insertMsMedian: number;
  insertMsAll: number[];
  readRowsMedian: number;
  memoryMedian: number;
  /** the whole tick (plan, checkpoints, insert, counts), median */
  tickMsMedian: number;
  /** median ms per kind of statement in a tick */
  byKindMs: Record<string, number>;
  /** median ms and rows read (commands only) per statement tag in a tick: the profile of a tick */
  byTag: Record<string, { ms: number; readRows: number }>;
  /** dedup.index rocksdb: 100k point lookups alone (StateRig.lookupFloor), ms */
  kvLookupMs?: Record<string, number>;
  /** dedup.index rocksdb: the candidate filter in front of the index, probed (state-filter.ts) */
  filter?: FilterProbe;
  filterError?: string;
  /** --state-hold-gb: GiB another process held while this size was measured (the page cache smaller by that) */
  heldGib?: number;
  /** bytes on disk of the seen keys (active parts) and of the index's SST files (0 files: no index) */
  seenBytes: number;
  indexBytes: number;
  indexFiles: number;
  /** seconds the fill to this size took (seen keys and index) */
  fillSeconds: number;
  /** share of the machine's CPU other processes used during the fill and the 3 slices */
  othersCpuShare: number;
}

export interface DedupStage {
  seenKeys: number;
  rows: number;
  slices: number;
  insertSeconds: number;
  rowsPerSecond: number;
  /** including planning, checkpoints and counts */
  tickRowsPerSecond: number;
  memoryMax: number;
  inserted: number;
}

export interface StateResult {
  sliceCosts: SliceCost[];
  dedupStage: DedupStage | undefined;
  prefill: { keys: number; seconds: number; seenSeconds: number; indexSeconds: number }[];
  /** dedup.index rocksdb: the index rebuilt from the seen keys after each size (winnow index rebuild) */
  rebuilds: IndexRebuild[];
  disk: Record<string, { bytes: number; rows: number; parts: number }>;
  /** --state-slices: consecutive slices after the last size */
  live?: LiveSlices;
  /** --state-live-rate: the filled pipeline fed through Kafka with the controller running */
  stream?: StateLive;
  streamError?: string;
}

const STAGE_SEED = 2;

export class StateRig {
  seen = 0;
  staged = 0;
  queries: QueryStat[] = [];
  readonly db: Db;
  constructor(
    readonly ctx: Ctx,
    readonly database: string,
    readonly topic: string,
    readonly names: ReturnType<typeof objectNames>,
  ) {
    this.db = ctx.servers.db();
  }

  /** Fills the seen keys (and the index) to `to`, or less when the disk would not hold it; returns seconds and the size reached. */
  async prefill(to: number): Promise<{ seconds: number; seenSeconds: number; indexSeconds: number; keys: number }> {
    const opts = this.ctx.opts;
    const t = {
      database: this.database,
      seen: this.names.seen,
      seenKv: this.names.seenKv,
      rocksdb: this.ctx.opts.index === 'rocksdb',
    };
    const reach = await sizeThatFits(this.ctx, t, this.seen, to);
    const from = this.seen;
    if (reach <= from) return { seconds: 0, seenSeconds: 0, indexSeconds: 0, keys: from };
    // Sorted: the index first, while the disk has room for its sort's spill; then the seen keys.
    const sortedFirst = opts.indexFill === 'sorted' || opts.indexFill === 'memtable';
    const indexSeconds =
      t.rocksdb && sortedFirst
        ? await fillIndexSorted(this.ctx, this.db, t, from, reach, opts.indexFill === 'memtable')
        : 0;
    const seenSeconds = await fillSeen(this.ctx, this.db, t, from, reach);
    // Rebuild: the index is written after the fill, by winnow index rebuild (stateScaling).
    const lateIndex =
      t.rocksdb && opts.indexFill === 'optimize' ? await fillIndexOptimized(this.ctx, this.db, t, from, reach) : 0;
    if (t.rocksdb && opts.indexFill !== 'rebuild')
      this.ctx.log(`state: seen-key index filled in ${(indexSeconds + lateIndex).toFixed(1)} s`);
    return this.filled(reach, seenSeconds, indexSeconds + lateIndex);
  }

  private filled(
    reach: number,
    seenSeconds: number,
    indexSeconds: number,
  ): { seconds: number; seenSeconds: number; indexSeconds: number; keys: number } {
    this.seen = reach;
    return { seconds: seenSeconds + indexSeconds, seenSeconds, indexSeconds, keys: reach };
  }

  /** The prefill's key of a number (SQL), as the seen keys hold it. */
  seenKey(n: string): string {
    return uuidOf(SEEN_SEED, n);
  }

  /** Stages `rows` rows after the ones already staged, partitions in lockstep. */
  async stage(rows: number): Promise<void> {
    const p = this.ctx.opts.partitions;
    const n = Math.ceil(rows / p) * p;
    const base = this.staged;
    const key = `multiIf(number % 20 = 7 AND ${this.seen} > 0, -1, number % 20 = 13 AND number >= 10, number - 10, number)`;
    // -1 marks a repeat of a seen key: one of the prefilled keys, picked by hash.
    await this.db.command(
      `INSERT INTO ${this.database}.${this.names.staging}
         (event_id, user_id, name, email, created_at, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       SELECT
         if(k = -1, ${uuidOf(SEEN_SEED, `toUInt64(sipHash64(number, ${base}) % ${Math.max(1, this.seen)})`)}, ${uuidOf(STAGE_SEED, `k + ${base}`)}) AS event_id,
         generateUUIDv4(number) AS user_id,
         concat('user', toString(number % 100000)) AS name,
         concat('user', toString(number % 100000), '@example.com') AS email,
         toDateTime(now()) AS created_at,
         now64(3) AS __t,
         '${this.topic}' AS _topic,
         toUInt32(number % ${p}) AS _partition,
         ${base / p} + intDiv(number, ${p}) AS _offset,
         now64(3), now64(3)
       FROM (SELECT number, toInt64(${key}) AS k FROM numbers(${n}))`,
    );
    this.staged += n;
  }

  async seenParts(): Promise<number> {
    const rows = await this.db.rows<{ n: string }>(
      `SELECT count() AS n FROM system.parts WHERE database = {d:String} AND table = {t:String} AND active`,
      {
        d: this.database,
        t: this.names.seen,
      },
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Bytes on disk of the seen keys and of the seen-key index (its SST files). */
  async storage(): Promise<{ seenBytes: number; indexBytes: number; indexFiles: number }> {
    const parts = await this.db.rows<{ b: string }>(
      `SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE database = {d:String} AND table = {t:String} AND active`,
      { d: this.database, t: this.names.seen },
    );
    const dir = this.ctx.opts.index === 'rocksdb' ? await kvDir(this.db, this.database, this.names.seenKv) : undefined;
    const files = dir ? await sstFiles(dir) : { n: 0, bytes: 0 };
    if (dir) {
      const c = await this.db.rows<{ name: string; value: string }>(
        `SELECT name, value FROM system.rocksdb WHERE database = {d:String} AND table = {t:String}
           AND name IN ('bloom.filter.useful', 'l0.hit', 'l1.hit', 'l2andup.hit', 'no.file.opens')`,
        { d: this.database, t: this.names.seenKv },
      );
      this.ctx.log(
        `state: seen-key index counters so far: ${c.map((r) => `${r.name} ${fmtInt(Number(r.value))}`).join(', ')}`,
      );
    }
    return { seenBytes: Number(parts[0]?.b ?? 0), indexBytes: files.bytes, indexFiles: files.n };
  }

  /** Lets background merges of the seen keys settle (bounded), as they would between slices in production. */
  async settleMerges(): Promise<void> {
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline) {
      const rows = await this.db.rows<{ n: string }>(
        `SELECT count() AS n FROM system.merges WHERE database = {d:String}`,
        { d: this.database },
      );
      if (Number(rows[0]?.n ?? 0) === 0) return;
      await sleep(500);
    }
  }

  /**
   * dedup.index rocksdb: the floor of a RocksDB point lookup, alone on the server: 100k
   * hashes looked up in the index (`h IN (...)`, as the slice's kv_hits does), absent ones
   * (answered by the bloom filter) and present ones (random seen keys: a data block read),
   * and the present ones again through a direct join (what the 0014 view did); each
   * includes generating its hashes, which `generate` times alone. Median of 3 each, ms.
   */
  async lookupFloor(): Promise<Record<string, number>> {
    const kv = `${this.database}.${this.names.seenKv}`;
    const n = 100_000;
    const present = (run: number): string =>
      `reinterpretAsUInt128(sipHash128(${uuidOf(SEEN_SEED, `toUInt64(sipHash64(number, ${run}) % ${this.seen})`)}))`;
    const absent = (run: number): string => `reinterpretAsUInt128(sipHash128(number, 'absent', ${run}))`;
    // Each returns its median ms; `found` checks what the lookups found, so "present" cannot
    // silently measure absent keys (it did until 2026-12-01: `x % n` is of n's type, UInt32,
    // and hashed to other keys than the fill's UInt64 numbers).
    const timed = async (
      sql: (run: number) => string,
      found: (rows: number) => boolean,
      settings: Record<string, string> = {},
    ): Promise<number> => {
      const ms: number[] = [];
      for (let run = 1; run <= 3; run++) {
        const t0 = performance.now();
        const [r] = await this.db.rows<{ c: string }>(sql(run + this.seen), {}, settings);
        ms.push(performance.now() - t0);
        const rows = Number(r?.c ?? 0);
        if (!found(rows)) throw new Error(`lookup floor: ${sql(run + this.seen).slice(0, 60)}... found ${rows} rows`);
      }
      return median(ms);
    };
    const most = (rows: number): boolean => rows > n / 2;
    const generate = await timed(
      (r) => `SELECT count() AS c FROM (SELECT ${present(r)} AS h FROM numbers(${n})) WHERE h != 0`,
      (rows) => rows === n,
    );
    const inAbsent = await timed(
      (r) => `SELECT count() AS c FROM ${kv} WHERE h IN (SELECT ${absent(r)} FROM numbers(${n}))`,
      (rows) => rows === 0,
    );
    const inPresent = await timed(
      (r) => `SELECT count() AS c FROM ${kv} WHERE h IN (SELECT ${present(r)} FROM numbers(${n}))`,
      most,
    );
    const joinPresent = await timed(
      (r) =>
        `SELECT count() AS c FROM (SELECT ${present(r)} AS h FROM numbers(${n})) AS k INNER JOIN ${kv} AS e ON k.h = e.h`,
      most,
      { join_algorithm: 'direct' },
    );
    return { generate, inAbsent, inPresent, joinPresent };
  }

  processor(p: ReturnType<typeof benchPipeline>, maxSliceRows: number): Processor {
    const cfg = { ...p, schedule: { ...p.schedule, maxSliceRows } };
    const db = instrument(this.db, this.ctx.opts.levers.insert, (q) => this.queries.push(q));
    return new Processor(db, cfg);
  }
}

const rigCpu = (rig: StateRig): Promise<{ busy: number; own: number }> =>
  benchCpu({ clickhouse: rig.ctx.servers.clickhouse.pid, kafka: rig.ctx.servers.kafka.pid });

function othersShare(c0: { busy: number; own: number }, c1: { busy: number; own: number }, seconds: number): number {
  return Math.max(0, c1.busy - c0.busy - (c1.own - c0.own)) / (seconds * os.cpus().length);
}

function byTag(queries: QueryStat[]): Record<string, { ms: number; readRows: number }> {
  const out: Record<string, { ms: number; readRows: number }> = {};
  for (const q of queries) {
    const t = (out[q.tag || 'untagged'] ??= { ms: 0, readRows: 0 });
    t.ms += q.ms;
    t.readRows += q.summary?.readRows ?? 0;
  }
  return out;
}

function byKind(queries: QueryStat[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const q of queries) out[q.kind] = (out[q.kind] ?? 0) + q.ms;
  return out;
}

async function tickTimed(
  rig: StateRig,
  proc: Processor,
): Promise<
  | {
      rows: number;
      inserted: number;
      insert: QueryStat;
      tickMs: number;
      byKind: Record<string, number>;
      byTag: Record<string, { ms: number; readRows: number }>;
    }
  | undefined
> {
  rig.queries = [];
  const t0 = performance.now();
  const out = await proc.runOneSlice();
  if (!out) return undefined;
  const insert = rig.queries.find((q) => q.kind === 'insert');
  if (!insert) throw new Error('state: a slice without an insert');
  return {
    rows: out.slice.rowsIn,
    inserted: out.slice.inserted,
    insert,
    tickMs: performance.now() - t0,
    byKind: byKind(rig.queries),
    byTag: byTag(rig.queries),
  };
}

export async function stateScaling(ctx: Ctx): Promise<StateResult> {
  const { opts, servers } = ctx;
  const database = 'bench_state';
  const topic = 'users_state';
  await createTopic(servers.kafkaClient('bench-state'), topic, opts.partitions);
  const p = benchPipeline({
    name: 'state',
    database,
    brokers: servers.kafka.brokers,
    topic,
    windowMs: opts.windowMs,
    levers: opts.levers,
    clickhouseUrl: servers.clickhouse.url,
    index: opts.index,
  });
  const rig = new StateRig(ctx, database, topic, objectNames(p));
  await migrate(rig.db, p, opts.levers);
  // Nothing is produced to this topic; the queue is not needed.
  await stopConsumption(rig.db, p);
  const result: StateResult = { sliceCosts: [], dedupStage: undefined, prefill: [], rebuilds: [], disk: {} };
  const marks = [...new Set([...opts.stateSizes, ...(opts.dedupSeen > 0 ? [opts.dedupSeen] : [])])].sort(
    (a, b) => a - b,
  );
  const small = rig.processor(p, opts.sliceRows);
  const big = rig.processor(p, opts.levers.maxSliceRows);
  for (const size of marks) {
    ctx.log(`state: filling the seen keys to ${fmtInt(size)}`);
    const c0 = await rigCpu(rig);
    const t0 = performance.now();
    const fill = await rig.prefill(size);
    result.prefill.push({
      keys: fill.keys,
      seconds: fill.seconds,
      seenSeconds: fill.seenSeconds,
      indexSeconds: fill.indexSeconds,
    });
    // The disk did not hold `size`: measure where the fill stopped, and fill no further.
    const short = fill.keys < size;
    await rig.settleMerges();
    // --state-hold-gb: the measurements below run with that much less RAM for the page cache.
    let hold: MemoryHold | undefined;
    if (opts.stateHoldGb > 0) {
      hold = await holdMemory(opts.stateHoldGb);
      ctx.log(`state: ${opts.stateHoldGb} GiB of memory held by pid ${hold.pid} while measuring this size`);
    }
    try {
      // --index-fill rebuild: the index as a new server or a failover gets it, rebuilt from the seen keys
      // (winnow index rebuild: passes, compaction, verification, each timed).
      if (opts.index === 'rocksdb' && opts.indexFill === 'rebuild')
        result.rebuilds.push(await rebuildIndex(ctx, rig, p, (n) => rig.seenKey(n)));
      if (opts.stateSizes.includes(size) || short) {
        const runs: NonNullable<Awaited<ReturnType<typeof tickTimed>>>[] = [];
        for (let i = 0; i < 3; i++) {
          await rig.stage(opts.sliceRows);
          const r = await tickTimed(rig, small);
          if (r) runs.push(r);
        }
        const c1 = await rigCpu(rig);
        const storage = await rig.storage();
        const c: SliceCost = {
          ...storage,
          fillSeconds: fill.seconds,
          othersCpuShare: othersShare(c0, c1, (performance.now() - t0) / 1000),
          seenKeys: await count(rig.db, `${database}.${rig.names.seen}`),
          seenParts: await rig.seenParts(),
          sliceRows: median(runs.map((r) => r.rows)),
          insertMsMedian: median(runs.map((r) => r.insert.ms)),
          insertMsAll: runs.map((r) => Math.round(r.insert.ms)),
          readRowsMedian: median(runs.map((r) => r.insert.summary?.readRows ?? 0)),
          memoryMedian: median(runs.map((r) => r.insert.summary?.memoryBytes ?? 0)),
          tickMsMedian: median(runs.map((r) => r.tickMs)),
          byKindMs: Object.fromEntries(
            ['plan', 'checkpoint', 'insert', 'count', 'other'].map((k) => [
              k,
              median(runs.map((r) => r.byKind[k] ?? 0)),
            ]),
          ),
          byTag: Object.fromEntries(
            [...new Set(runs.flatMap((r) => Object.keys(r.byTag)))].map((t) => [
              t,
              {
                ms: median(runs.map((r) => r.byTag[t]?.ms ?? 0)),
                readRows: median(runs.map((r) => r.byTag[t]?.readRows ?? 0)),
              },
            ]),
          ),
        };
        if (opts.index === 'rocksdb') {
          const f = await rig.lookupFloor();
          c.kvLookupMs = f;
          ctx.log(
            `state: ${fmtInt(c.seenKeys)} seen keys: 100k RocksDB point lookups alone: absent ${f['inAbsent']!.toFixed(0)} ms, present ${f['inPresent']!.toFixed(0)} ms (h IN), ${f['joinPresent']!.toFixed(0)} ms (direct join); generating the 100k hashes ${f['generate']!.toFixed(0)} ms`,
          );
          // A probe failing (e.g. its GROUP BY out of memory under --state-hold-gb) keeps the size's figures.
          let fp: FilterProbe | undefined;
          try {
            fp = await filterProbe(rig.db, database, rig.names.seen, rig.seen);
          } catch (err) {
            c.filterError = String(err);
            ctx.log(`state: ${fmtInt(c.seenKeys)} seen keys: the filter probe FAILED: ${c.filterError}`);
          }
          if (fp) {
            c.filter = fp;
            ctx.log(
              `state: ${fmtInt(c.seenKeys)} seen keys: a 2^32-bit filter in front (probe): built in ${fp.buildSeconds.toFixed(1)} s + loaded in ${fp.loadSeconds.toFixed(1)} s, ${(fp.bytes / 2 ** 20).toFixed(0)} MiB; 100k lookups absent ${fp.absentMs.toFixed(0)} ms, present ${fp.presentMs.toFixed(0)} ms (hashing alone ${fp.generateMs.toFixed(0)} ms); lets ${(fp.falsePositive * 100).toFixed(1)}% of absent keys through; ${fp.falseNegatives} present keys missed`,
            );
            if (fp.falseNegatives > 0)
              throw new Error(`filter probe: ${fp.falseNegatives} present keys not in the filter`);
          }
        }
        if (hold) c.heldGib = hold.gib;
        result.sliceCosts.push(c);
        ctx.log(
          `state: ${fmtInt(c.seenKeys)} seen keys: slice of ${fmtInt(c.sliceRows)} rows inserted in ${c.insertMsMedian.toFixed(0)} ms (read ${fmtInt(c.readRowsMedian)} rows, ${(c.memoryMedian / 2 ** 20).toFixed(0)} MiB)`,
        );
        ctx.log(
          `state: ${fmtInt(c.seenKeys)} seen keys on disk: seen keys ${(c.seenBytes / c.seenKeys).toFixed(1)} bytes/key${c.indexFiles > 0 ? `, index ${(c.indexBytes / c.seenKeys).toFixed(1)} bytes/key in ${c.indexFiles} sst files` : ''}; filled in ${c.fillSeconds.toFixed(0)} s, others used ${(c.othersCpuShare * 100).toFixed(0)}% of the machine`,
        );
        ctx.log(
          `state: ${fmtInt(c.seenKeys)} seen keys: tick ${c.tickMsMedian.toFixed(0)} ms = ${Object.entries(c.byTag)
            .map(
              ([t, v]) =>
                `${t.replace('winnow:', '')} ${v.ms.toFixed(0)} ms${v.readRows ? ` (${fmtInt(v.readRows)} rows)` : ''}`,
            )
            .join(', ')}`,
        );
      }
      if (size === opts.dedupSeen) {
        const seenKeys = await count(rig.db, `${database}.${rig.names.seen}`);
        await rig.stage(opts.dedupRows);
        let rows = 0;
        let inserted = 0;
        let insertMs = 0;
        let tickMs = 0;
        let memoryMax = 0;
        let slices = 0;
        for (let r = await tickTimed(rig, big); r; r = await tickTimed(rig, big)) {
          rows += r.rows;
          inserted += r.inserted;
          insertMs += r.insert.ms;
          tickMs += r.tickMs;
          memoryMax = Math.max(memoryMax, r.insert.summary?.memoryBytes ?? 0);
          slices++;
        }
        result.dedupStage = {
          seenKeys,
          rows,
          slices,
          insertSeconds: insertMs / 1000,
          rowsPerSecond: rows / (insertMs / 1000),
          tickRowsPerSecond: rows / (tickMs / 1000),
          memoryMax,
          inserted,
        };
        ctx.log(
          `state: dedup stage at ${fmtInt(seenKeys)} seen keys: ${fmtInt(result.dedupStage.rowsPerSecond)} rows/s (${slices} slices of up to ${fmtInt(opts.levers.maxSliceRows)})`,
        );
      }
    } finally {
      await hold?.release();
    }
    if (short) break;
  }
  if (opts.stateSlices > 0) result.live = await liveSlices(ctx, rig, () => tickTimed(rig, small));
  if (opts.stateLiveRate > 0) {
    // A failure going live keeps the sizes' figures (a 1B fill takes half an hour).
    try {
      result.stream = await stateLive(ctx, database, await count(rig.db, `${database}.${rig.names.seen}`));
    } catch (err) {
      result.streamError = String(err);
      ctx.log(`state live: FAILED: ${result.streamError}`);
    }
  }
  result.disk = await diskUsage(rig.db, database);
  return result;
}
