/**
 * How the state phase fills the seen keys (and, with dedup.index rocksdb, the
 * seen-key index) to a size, in statements small enough for any size up to
 * the opt-in billion:
 *   - the seen keys in chunks of FILL_CHUNK keys (one INSERT each);
 *   - the index (--index-fill): as today, one bulk insert then OPTIMIZE
 *     (needs the index's size again on disk: 25 GB at 1B keys), or in sorted
 *     passes that need no compaction (for the opt-in billion).
 * Progress (keys, rate, ETA, disk free) is logged at least every 30 s. Before
 * filling, the size is cut to what the disk holds above --state-keep-free-gb.
 */
import { statfs } from 'node:fs/promises';
import type { Ctx } from '../context.ts';
import { fmtInt } from '../context.ts';
import type { Db } from '../../src/clickhouse/client.ts';

export const uuidOf = (seed: number, k: string): string =>
  `reinterpretAsUUID(concat(reinterpretAsString(sipHash64(${seed}, ${k})), reinterpretAsString(sipHash64(${seed}, ${k}, 1))))`;
export const SEEN_SEED = 1;

/** Seen keys per INSERT: ~15-25 s on 2 cores, so progress comes at least every 30 s. */
const FILL_CHUNK = 20_000_000;
/** Free disk the fill leaves to everything else on the machine: --state-keep-free-gb. */
const keepFreeBytes = (ctx: Ctx): number => ctx.opts.stateKeepFreeGb * 2 ** 30;
/** Bytes on disk per key measured at 100M (bench/README.md): seen keys (while merges run), index. */
const SEEN_BYTES_PER_KEY = 32;
const INDEX_BYTES_PER_KEY = 24;

export interface FillTarget {
  database: string;
  seen: string;
  seenKv: string;
  rocksdb: boolean;
}

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

const gb = (b: number): string => `${(b / 2 ** 30).toFixed(1)} GB`;

/** The size the disk allows when filling from `from` keys to `to`: `to`, or less with a log line saying why. */
export async function sizeThatFits(ctx: Ctx, t: FillTarget, from: number, to: number): Promise<number> {
  // OPTIMIZE writes the index again before it drops the old files.
  const perKey =
    SEEN_BYTES_PER_KEY + (t.rocksdb ? INDEX_BYTES_PER_KEY * (ctx.opts.indexFill === 'optimize' ? 2 : 1) : 0);
  const free = await freeBytes(ctx.servers.dir);
  const room = Math.max(0, Math.floor((free - keepFreeBytes(ctx)) / perKey));
  if (to - from <= room) return to;
  const fits = from + Math.floor(room / 1_000_000) * 1_000_000;
  ctx.log(
    `state: ${fmtInt(to)} seen keys need about ${gb((to - from) * perKey)} more (${perKey} bytes/key), ${gb(free)} free with ${gb(keepFreeBytes(ctx))} to keep: filling to ${fmtInt(fits)} instead`,
  );
  return fits;
}

/** The seen-key time of key number `k`: spread over 90% of the window, at least a minute old. */
export function keyTimeSql(k: string, windowMs: number): string {
  return `now64(3) - toIntervalMillisecond(sipHash64(${k}, 3) % ${Math.floor(windowMs * 0.9)} + 60000)`;
}

class Progress {
  private last = performance.now();
  private readonly t0 = performance.now();
  constructor(
    private readonly ctx: Ctx,
    private readonly what: string,
    private readonly total: number,
  ) {}
  /**
   * While a statement tagged `tag` runs, logs every 30 s the rows it has read (keys hashed) and written
   * (system.processes); a sorted pass writes nothing until its input is sorted. Returns the stop.
   */
  poll(db: Db, tag: string, before: number): () => void {
    const timer = setInterval(() => {
      db.rows<{ r: string; w: string }>(
        `SELECT sum(read_rows) AS r, sum(written_rows) AS w FROM system.processes
         WHERE query LIKE {p:String} AND query NOT LIKE '%system.processes%'`,
        { p: `%${tag}%` },
      )
        .then(async (x) => {
          const s = ((performance.now() - this.t0) / 1000).toFixed(0);
          this.ctx.log(
            `state: ${this.what}: ${fmtInt(Number(x[0]?.r ?? 0))} keys hashed, ${fmtInt(before + Number(x[0]?.w ?? 0))} / ${fmtInt(this.total)} written, ${s} s, disk free ${gb(await freeBytes(this.ctx.servers.dir))}`,
          );
        })
        .catch(() => undefined);
    }, 30_000);
    return () => clearInterval(timer);
  }

  async step(done: number, force = false): Promise<void> {
    const now = performance.now();
    if (!force && now - this.last < 25_000) return;
    this.last = now;
    const s = (now - this.t0) / 1000;
    const rate = done / Math.max(s, 1e-3);
    const eta = rate > 0 ? (this.total - done) / rate : NaN;
    this.ctx.log(
      `state: ${this.what} ${fmtInt(done)} / ${fmtInt(this.total)} keys, ${fmtInt(rate)} keys/s, ${s.toFixed(0)} s, ETA ${Number.isFinite(eta) ? eta.toFixed(0) : '-'} s, disk free ${gb(await freeBytes(this.ctx.servers.dir))}`,
    );
  }
}

/** Seen keys number `from`..`to`-1, in chunks. */
export async function fillSeen(ctx: Ctx, db: Db, t: FillTarget, from: number, to: number): Promise<number> {
  const t0 = performance.now();
  const progress = new Progress(ctx, 'seen keys', to - from);
  for (let a = from; a < to; a += FILL_CHUNK) {
    const n = Math.min(FILL_CHUNK, to - a);
    await db.command(
      `INSERT INTO ${t.database}.${t.seen} (event_id, __t, __slice)
       SELECT ${uuidOf(SEEN_SEED, `number + ${a}`)}, ${keyTimeSql(`number + ${a}`, ctx.opts.windowMs)}, 'prefill'
       FROM numbers(${n})`,
      {},
      { max_insert_threads: '2', max_block_size: '1048576' },
    );
    await progress.step(a + n - from, a + n >= to && to - from > FILL_CHUNK);
  }
  return (performance.now() - t0) / 1000;
}

/**
 * Today's index fill (--index-fill optimize): one bulk insert of unsorted keys, then OPTIMIZE. The
 * insert ingests SST files without bloom filters (ClickHouse writes them with RocksDB's default
 * options) that all overlap: lookups then read a data block of every file (100M keys in ~130 files:
 * 4-6 s per 100k lookups, 0.8-1 s after compaction). OPTIMIZE rewrites them, with filters, and needs
 * the index's size again on disk while it runs.
 */
export async function fillIndexOptimized(ctx: Ctx, db: Db, t: FillTarget, from: number, to: number): Promise<number> {
  const t0 = performance.now();
  await db.command(
    `INSERT INTO ${t.database}.${t.seenKv} (h, __t, __s)
     SELECT reinterpretAsUInt128(sipHash128(${uuidOf(SEEN_SEED, `number + ${from}`)})), ${keyTimeSql(`number + ${from}`, ctx.opts.windowMs)}, sipHash64('prefill')
     FROM numbers(${to - from})`,
    {},
    { max_insert_threads: '2', max_block_size: '1048576' },
  );
  const c0 = performance.now();
  await db.command(`OPTIMIZE TABLE ${t.database}.${t.seenKv}`);
  ctx.log(`state: seen-key index compacted in ${((performance.now() - c0) / 1000).toFixed(1)} s`);
  return (performance.now() - t0) / 1000;
}

/** Bytes a key of a sorted pass spills to disk (16-byte sort key, 8-byte number). */
const SPILL_BYTES_PER_KEY = 26;
/**
 * --index-fill sorted: index entries of keys number `from`..`to`-1 in passes over ranges of the key's
 * first stored byte (the UInt128 is stored little-endian: its lowest byte first), each sorted by the
 * stored bytes (a FixedString sorts bytewise, as RocksDB compares keys), so the bulk insert's SST files
 * cover disjoint ascending ranges and are all ingested at the bottom level: no compaction needed, and
 * no more disk than the index itself plus one pass's sort spill. Passes are as few as the disk allows
 * (each hashes every key again: ~1.4M keys/s on a shared machine, 12 minutes at 1B). The files carry no bloom filter (bulk-written: RocksDB's default options).
 */
export async function fillIndexSorted(
  ctx: Ctx,
  db: Db,
  t: FillTarget,
  from: number,
  to: number,
  memtable = false,
): Promise<number> {
  const t0 = performance.now();
  // --index-fill memtable: the same sorted passes through RocksDB's memtable; its flushes and compactions
  // write files with the server's bloom filter (the bulk path's files have none).
  const bulk = async (on: 0 | 1): Promise<void> => {
    if (memtable)
      await db.command(`ALTER TABLE ${t.database}.${t.seenKv} MODIFY SETTING optimize_for_bulk_insert = ${on}`);
  };
  await bulk(0);
  const n = to - from;
  const room = Math.max(1, (await freeBytes(ctx.servers.dir)) - keepFreeBytes(ctx) - n * INDEX_BYTES_PER_KEY);
  const passes = Math.min(256, Math.max(1, Math.ceil((n * SPILL_BYTES_PER_KEY) / room)));
  const progress = new Progress(ctx, `index (${passes} sorted passes${memtable ? ', through the memtable' : ''})`, n);
  const h = `reinterpretAsUInt128(sipHash128(${uuidOf(SEEN_SEED, `number + ${from}`)}))`;
  for (let i = 0; i < passes; i++) {
    const lo = Math.floor((256 * i) / passes);
    const hi = Math.floor((256 * (i + 1)) / passes);
    const range = passes === 1 ? '1' : `toUInt8(h % 256) >= ${lo} AND toUInt8(h % 256) < ${hi}`;
    const done = progress.poll(db, 'kv1b_index_fill', Math.round((n * lo) / 256));
    try {
      await db.command(
        `INSERT INTO ${t.database}.${t.seenKv} (h, __t, __s)
         SELECT /* kv1b_index_fill */ reinterpretAsUInt128(hs), ${keyTimeSql(`k`, ctx.opts.windowMs)}, sipHash64('prefill')
         FROM (
           SELECT reinterpretAsFixedString(h) AS hs, number + ${from} AS k
           FROM (SELECT number, ${h} AS h FROM numbers(${n}))
           WHERE ${range}
           ORDER BY hs
         )`,
        {},
        {
          max_insert_threads: '1',
          max_block_size: '1048576',
          max_bytes_before_external_sort: String(2 * 2 ** 30),
        },
      );
    } finally {
      done();
    }
    await progress.step(Math.round((n * hi) / 256), true);
  }
  await bulk(1);
  return (performance.now() - t0) / 1000;
}
