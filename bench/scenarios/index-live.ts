/**
 * `--state-slices N` (state phase, opt-in): after the last state size, N
 * consecutive slices of --slice-rows rows (5% repeats of a seen key, 5% of the
 * same batch) on the same pipeline, as a live pipeline runs them one after the
 * other. Records each slice's insert and tick time and, every few slices, the
 * seen-key index's file picture (dedup.index rocksdb): the *.sst files in the
 * table's directory (count, bytes, how many are small: a slice's own file not
 * yet compacted) and system.rocksdb counters (file opens, bloom filter hits,
 * hits per level, compaction bytes and CPU; cumulative).
 * The question (issue 12): does RocksDB's background compaction keep a live
 * index, written as one bulk-ingested SST per slice, cheap to look up, or does
 * the per-slice cost climb?
 */
import os from 'node:os';
import path from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import type { Ctx } from '../context.ts';
import { fmtInt, median } from '../context.ts';
import { benchCpu } from '../probe.ts';
import type { StateRig } from './state.ts';
import type { Db } from '../../src/clickhouse/client.ts';

/** What one timed tick gave (state.ts tickTimed). */
export interface TimedTick {
  rows: number;
  tickMs: number;
  insert: { ms: number; summary?: { readRows: number } };
}

export interface IndexPicture {
  slice: number;
  sstFiles: number;
  sstBytes: number;
  /** files under 16 MiB: slices' ingested files not yet merged by a compaction (ClickHouse keeps no RocksDB LOG to read levels from) */
  smallFiles: number;
  /** system.rocksdb counters (cumulative since the table was opened) */
  counters: Record<string, number>;
}

export interface LiveWindow {
  fromSlice: number;
  toSlice: number;
  insertMsMedian: number;
  tickMsMedian: number;
  readRowsMedian: number;
  /** CPU others used during these slices, share of the machine */
  foreignCpuShare: number;
}

export interface LiveSlices {
  slices: number;
  sliceRows: number;
  seenKeysBefore: number;
  /** the index table's optimize_for_bulk_insert, when --index-bulk-insert set it */
  bulkInsert: number | undefined;
  insertMs: number[];
  tickMs: number[];
  windows: LiveWindow[];
  pictures: IndexPicture[];
}

const COUNTERS = [
  'no.file.opens',
  'bloom.filter.useful',
  'bloom.filter.full.positive',
  'l0.hit',
  'l1.hit',
  'l2andup.hit',
  'block.cache.data.miss',
  'compact.write.bytes',
  'compaction.total.time.cpu_micros',
];

/** SST files below this size are (nearly all) one slice's ingested file not yet compacted into a larger one. */
const SMALL = 16 * 2 ** 20;

export async function sstFiles(dir: string): Promise<{ n: number; bytes: number; small: number }> {
  let n = 0;
  let bytes = 0;
  let small = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return { n, bytes, small };
  }
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.sst')) continue;
    const size = (await stat(path.join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
    n++;
    bytes += size;
    if (size < SMALL) small++;
  }
  return { n, bytes, small };
}

/** The seen-key index's data directory (system.tables data_paths). */
export async function kvDir(db: Db, database: string, table: string): Promise<string | undefined> {
  const t = await db.rows<{ p: string[] }>(
    `SELECT data_paths AS p FROM system.tables WHERE database = {d:String} AND name = {t:String}`,
    { d: database, t: table },
  );
  return t[0]?.p[0];
}

async function picture(rig: StateRig, slice: number, dir: string | undefined): Promise<IndexPicture> {
  const rows = await rig.db.rows<{ name: string; value: string }>(
    `SELECT name, value FROM system.rocksdb WHERE database = {d:String} AND table = {t:String}`,
    { d: rig.database, t: rig.names.seenKv },
  );
  const counters: Record<string, number> = {};
  for (const r of rows) if (COUNTERS.includes(r.name)) counters[r.name] = Number(r.value);
  const files = dir ? await sstFiles(dir) : { n: 0, bytes: 0, small: 0 };
  return { slice, sstFiles: files.n, sstBytes: files.bytes, smallFiles: files.small, counters };
}

function ourCpu(rig: StateRig): Promise<{ busy: number; own: number }> {
  const s = rig.ctx.servers;
  return benchCpu({ clickhouse: s.clickhouse.pid, kafka: s.kafka.pid });
}

export async function liveSlices(
  ctx: Ctx,
  rig: StateRig,
  tick: () => Promise<TimedTick | undefined>,
): Promise<LiveSlices> {
  const { opts } = ctx;
  const rocks = opts.index === 'rocksdb';
  let dir: string | undefined;
  if (rocks) {
    if (opts.indexBulkInsert !== undefined) {
      await rig.db.command(
        `ALTER TABLE ${rig.database}.${rig.names.seenKv} MODIFY SETTING optimize_for_bulk_insert = ${opts.indexBulkInsert}`,
      );
      ctx.log(`state live: seen-key index set to optimize_for_bulk_insert = ${opts.indexBulkInsert}`);
    }
    dir = await kvDir(rig.db, rig.database, rig.names.seenKv);
  }
  const every = 10;
  const out: LiveSlices = {
    slices: opts.stateSlices,
    sliceRows: opts.sliceRows,
    seenKeysBefore: rig.seen,
    bulkInsert: rocks ? opts.indexBulkInsert : undefined,
    insertMs: [],
    tickMs: [],
    windows: [],
    pictures: [],
  };
  const show = (pc: IndexPicture): void =>
    ctx.log(
      `state live: index after slice ${pc.slice}: ${pc.sstFiles} sst files, ${(pc.sstBytes / 2 ** 20).toFixed(0)} MiB, ${pc.smallFiles} under 16 MiB; ${Object.entries(
        pc.counters,
      )
        .map(([k, v]) => `${k} ${fmtInt(v)}`)
        .join(', ')}`,
    );
  if (rocks) {
    const pc = await picture(rig, 0, dir);
    out.pictures.push(pc);
    show(pc);
  }
  let c0 = await ourCpu(rig);
  let t0 = performance.now();
  let reads: number[] = [];
  for (let i = 1; i <= opts.stateSlices; i++) {
    await rig.stage(opts.sliceRows);
    const r = await tick();
    if (!r) throw new Error(`state live: slice ${i} found nothing staged`);
    out.insertMs.push(Math.round(r.insert.ms));
    out.tickMs.push(Math.round(r.tickMs));
    reads.push(r.insert.summary?.readRows ?? 0);
    if (i % every === 0 || i === opts.stateSlices) {
      const c1 = await ourCpu(rig);
      const seconds = (performance.now() - t0) / 1000;
      const from = i - reads.length + 1;
      const w: LiveWindow = {
        fromSlice: from,
        toSlice: i,
        insertMsMedian: median(out.insertMs.slice(from - 1)),
        tickMsMedian: median(out.tickMs.slice(from - 1)),
        readRowsMedian: median(reads),
        foreignCpuShare: Math.max(0, c1.busy - c0.busy - (c1.own - c0.own)) / (seconds * os.cpus().length),
      };
      out.windows.push(w);
      ctx.log(
        `state live: slices ${w.fromSlice}-${w.toSlice}: insert ${w.insertMsMedian.toFixed(0)} ms, tick ${w.tickMsMedian.toFixed(0)} ms (medians), read ${fmtInt(w.readRowsMedian)} rows; others used ${(w.foreignCpuShare * 100).toFixed(0)}%`,
      );
      if (rocks) {
        const pc = await picture(rig, i, dir);
        out.pictures.push(pc);
        show(pc);
      }
      reads = [];
      c0 = await ourCpu(rig);
      t0 = performance.now();
    }
  }
  return out;
}
