/**
 * `winnow index rebuild`: the seen-key index of `dedup.index: rocksdb` written
 * again from the record, the seen keys (a new server, a failover to another
 * replica, a lost or corrupt RocksDB directory). The caller holds the
 * pipeline's lease, so no slice writes the index meanwhile.
 *
 * The index is emptied, then written partition by partition of the seen keys
 * (their time buckets, `PARTITION BY` a bucket of `__t`), oldest first, and
 * within a partition in passes over ranges of the index key `h` (the 128-bit
 * key hash), as many as its rows need, so one pass's GROUP BY holds about
 * `keysPerPass` keys whatever the number of seen keys, and each pass reads
 * only its partition (`_partition_id`: ClickHouse skips the other parts), so
 * the seen keys are read once in all, not once a pass.
 *
 * Why that leaves each key's latest kept time and its slice: the partition key
 * is a bucket of `__t`, non-decreasing in `__t`, so partitions hold disjoint
 * ranges of `__t`, ordered by their least `__t`; a key's latest kept time
 * (among its rows inside their TTL) lies in the latest partition holding such
 * a row, and that partition's pass computes exactly it and its row's slice
 * (max / argMax within the partition). A key in several partitions gets one
 * entry per partition; RocksDB keeps the last written (an INSERT is a Put, or
 * an ingested file with a later sequence number), so writing the partitions
 * oldest first leaves the latest (test/e2e/index-rebuild.test.ts checks it).
 *
 * RocksDB orders keys bytewise, and EmbeddedRocksDB stores a UInt128
 * little-endian: a range is a range of `h`'s first four bytes in memory order
 * (`passBucketSql`), and a pass is written ordered by its bytes in memory order
 * (`byteSwap(h)`: cheaper to sort than `reinterpretAsFixedString(h)`, 0.95
 * against 1.35 GB for 5M keys), so a partition's passes, and the SST files
 * each bulk insert cuts, follow one another without overlap; the partitions'
 * files do overlap (each spans the whole key range), and the compaction after
 * the passes merges them (bench/README.md, "Rebuilding the seen-key index").
 * Then the verification of `winnow check` (indexLagSql) over every seen key,
 * in passes over ranges of `h` (each reads every seen key).
 */
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import { ClickHouseFailure, type Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { objectNames, seenExpirySql, seenKvHashSql, seenKvSliceSql } from '../provisioning/objects.ts';
import { countOfSql, indexLagSql } from './check-sql.ts';

/** About this many seen keys a pass: ~1 GB of ClickHouse memory for its GROUP BY and sort. */
export const KEYS_PER_PASS = 10_000_000;
const BUCKETS = 2 ** 32;

/** Passes for `seenRows` seen-key rows (at least the keys): at least one. */
export function passCount(seenRows: number, keysPerPass = KEYS_PER_PASS): number {
  return Math.max(1, Math.ceil(seenRows / keysPerPass));
}

/** The first four bytes of the index key as RocksDB compares them (memory order), as a UInt32. */
export function passBucketSql(p: PipelineConfig): string {
  return `byteSwap(toUInt32(bitAnd(${seenKvHashSql(p)}, 0xFFFFFFFF)))`;
}

/** Pass `i` of `n`: the bucket range [lo, hi), over the whole UInt32 range. */
export function passRange(i: number, n: number): { lo: number; hi: number } {
  return { lo: Math.floor((i * BUCKETS) / n), hi: Math.floor(((i + 1) * BUCKETS) / n) };
}

/** The seen keys of range `i` of `n`: a condition on the key columns (PREWHERE). */
export function passScopeSql(p: PipelineConfig, i: number, n: number): ParamSql {
  const { lo, hi } = passRange(i, n);
  return { sql: `${passBucketSql(p)} >= {lo:UInt64} AND ${passBucketSql(p)} < {hi:UInt64}`, params: { lo, hi } };
}

/** Rows of the seen keys (count() from the parts' metadata): the verification's pass count's basis. */
export function seenRowsSql(p: PipelineConfig): string {
  const n = objectNames(p);
  return `SELECT count() AS n FROM ${qualified(n.database, n.seen)}`;
}

/**
 * The seen keys' partitions, oldest first: id, least kept time, rows. Answered
 * from the parts' metadata (the min/max/count projection), no rows read.
 */
export function seenPartitionsSql(p: PipelineConfig): string {
  const n = objectNames(p);
  return `SELECT _partition_id AS id, toString(min(\`__t\`)) AS first, count() AS n
    FROM ${qualified(n.database, n.seen)} GROUP BY id ORDER BY min(\`__t\`), id`;
}

export interface SeenPartition {
  id: string;
  /** its least kept time, 'YYYY-MM-DD hh:mm:ss.mmm' UTC */
  from: string;
  rows: number;
}

/** One write pass: range `range` of `ranges` of the key hash within one partition. */
export interface RebuildPass {
  partition: SeenPartition;
  range: number;
  ranges: number;
}

/** The write passes: partitions oldest first, each in as many hash ranges as its rows need. */
export function planPasses(partitions: SeenPartition[], keysPerPass = KEYS_PER_PASS): RebuildPass[] {
  return partitions.flatMap((partition) => {
    const ranges = passCount(partition.rows, keysPerPass);
    return Array.from({ length: ranges }, (_, range) => ({ partition, range, ranges }));
  });
}

/** Empties the index (RocksDB's directory is dropped and opened again). */
export function truncateIndexSql(p: PipelineConfig): string {
  const n = objectNames(p);
  return `TRUNCATE TABLE ${qualified(n.database, n.seenKv)}`;
}

/**
 * One pass: per key hash of the range, among the partition's seen keys still
 * inside their TTL, the latest kept time and that row's slice (as indexLagSql
 * computes an entry), written in RocksDB's key order. The `_partition_id`
 * condition prunes the other partitions' parts before any row is read.
 */
export function rebuildPassSql(p: PipelineConfig, pass: RebuildPass): ParamSql {
  const names = objectNames(p);
  const scope = passScopeSql(p, pass.range, pass.ranges);
  return {
    sql: `INSERT INTO ${qualified(names.database, names.seenKv)} (\`h\`, \`__t\`, \`__s\`)
       SELECT ${seenKvHashSql(p)} AS h, max(\`__t\`) AS t, argMax(${seenKvSliceSql('`__slice`')}, \`__t\`) AS s
       FROM ${qualified(names.database, names.seen)}
       PREWHERE ${scope.sql}
       WHERE _partition_id = {partition:String} AND ${seenExpirySql(p)} > now()
       GROUP BY h
       ORDER BY byteSwap(h)`,
    params: { ...scope.params, partition: pass.partition.id },
  };
}

/** Settings of a pass: one ordered insert stream; untokened on purpose (RocksDB keeps no tokens). */
export const REBUILD_SETTINGS = {
  max_insert_threads: '1',
  deduplicate_insert_select: 'disable',
  log_comment: 'winnow:index_rebuild',
} as const;

/**
 * The privileges on the index table the rebuild needs beyond run's grants (README "Grants"): TRUNCATE,
 * and OPTIMIZE when it compacts.
 */
export function rebuildGrantNeeds(p: PipelineConfig, compact: boolean): { privilege: string; on: string }[] {
  const n = objectNames(p);
  const on = qualified(n.database, n.seenKv);
  return [{ privilege: 'TRUNCATE', on }, ...(compact ? [{ privilege: 'OPTIMIZE', on }] : [])];
}

/** Compacts the index: RocksDB CompactRange, which rewrites the files with the server's bloom filter. */
/** The index's OPTIMIZE still running on the server (its request may have timed out). */
export function compactRunningSql(p: PipelineConfig): ParamSql {
  return {
    sql: `SELECT count() AS n FROM system.processes WHERE startsWith(query, {q:String})`,
    params: { q: compactIndexSql(p) },
  };
}

/**
 * OPTIMIZE of the index. It sends no progress, so at hundreds of millions of
 * entries it outlasts the client's request timeout (5 min; the bench's 500M
 * index took longer). ClickHouse goes on with a statement that is not
 * read-only when its client leaves, so a timeout waits for it to end,
 * renewing the lease; the verification after it checks the entries either way.
 */
async function compactIndex(db: Db, p: PipelineConfig, keep: () => Promise<void>): Promise<void> {
  try {
    await db.command(compactIndexSql(p));
  } catch (err) {
    if (!(err instanceof ClickHouseFailure) || err.netCode !== 'TIMEOUT') throw err;
    const q = compactRunningSql(p);
    for (;;) {
      const [r] = await db.rows<{ n: string }>(q.sql, q.params);
      if (Number(r?.n ?? 0) === 0) return;
      await keep();
      await new Promise((resolve) => setTimeout(resolve, COMPACT_POLL_MS));
    }
  }
}

const COMPACT_POLL_MS = 2_000;

export function compactIndexSql(p: PipelineConfig): string {
  const n = objectNames(p);
  return `OPTIMIZE TABLE ${qualified(n.database, n.seenKv)}`;
}

/** Seen keys of pass `i` of `n` written within the window whose entry is missing or older (winnow check's query). */
export function passLagCountSql(p: PipelineConfig, i: number, n: number): ParamSql {
  return countOfSql(indexLagSql(p, passScopeSql(p, i, n)));
}

/**
 * The index's entries, counted exactly: a full read of the RocksDB table (no
 * approximate count from RocksDB's estimate), as many entries as seen keys.
 */
export function indexEntriesSql(p: PipelineConfig): string {
  const n = objectNames(p);
  return `SELECT count() AS n FROM ${qualified(n.database, n.seenKv)} SETTINGS optimize_trivial_approximate_count_query = 0`;
}

/** The index's size on disk as the server reports it (RocksDB's SST files). */
export function indexSizeSql(p: PipelineConfig): ParamSql {
  const n = objectNames(p);
  return {
    sql: `SELECT toUInt64(ifNull(total_bytes, 0)) AS bytes FROM system.tables WHERE database = {d:String} AND name = {t:String}`,
    params: { d: n.database, t: n.seenKv },
  };
}

export interface RebuildProgress {
  phase: 'write' | 'compact' | 'verify';
  pass: number;
  passes: number;
  /** write: the pass's partition of the seen keys, and its range of the partition's hash ranges */
  partition?: { id: string; from: string; range: number; ranges: number };
  /** entries written so far (write: puts, a key kept in two partitions counts twice), or missing entries found so far (verify) */
  entries: number;
  elapsedMs: number;
}

export interface RebuildResult {
  /** write passes (each one hash range of one partition) */
  passes: number;
  /** partitions of the seen keys written */
  partitions: number;
  /** seen-key rows the passes read (each pass reads its whole partition: seen rows x passes per partition) */
  readRows: number;
  seenRows: number;
  /**
   * Entries the passes wrote (RocksDB puts): a key kept in several partitions is
   * written once for each, the later put replacing the earlier.
   */
  written: number;
  /** The index's entries after the rebuild, counted exactly with the verification (null: not verified). */
  entries: number | null;
  writeSeconds: number;
  /** the OPTIMIZE after the passes (0: not asked) */
  compactSeconds: number;
  verifySeconds: number;
  /** the index's bytes on disk after the rebuild (0: not reported) */
  bytes: number;
  /** seen keys written within the window without an entry at their latest kept time: 0 when sound */
  missing: number;
  /** the largest memory one pass's insert used on the server */
  peakMemoryBytes: number;
}

export interface RebuildOptions {
  keysPerPass?: number;
  /** called before each pass; false: the lease was lost, the rebuild stops (CONFLICT) */
  keepLease?: () => Promise<boolean> | boolean;
  progress?: (p: RebuildProgress) => void;
  /** skip the verification (the benchmark times it apart) */
  verify?: boolean;
  /**
   * OPTIMIZE the index after the passes (default true). Its files do not overlap, but ClickHouse writes
   * bulk-inserted SST files without a bloom filter: a compaction rewrites them with the server's filter,
   * and lookups of absent keys (most of a slice's) then skip the data block (bench/README.md: 100k lookups
   * 3-4x faster at 10M and 100M keys, for a 5-11 s and a 45 s compaction).
   */
  compact?: boolean;
}

/**
 * winnow check's verification of the index over every seen key, in `passes`
 * ranges of the key hash (bounded memory): how many seen keys written within
 * the window lack an entry at their latest kept time.
 */
export async function verifySeenIndex(
  db: Db,
  p: PipelineConfig,
  passes: number,
  progress?: (x: RebuildProgress) => void,
): Promise<number> {
  const t0 = performance.now();
  let missing = 0;
  for (let i = 0; i < passes; i++) {
    const q = passLagCountSql(p, i, passes);
    const [r] = await db.rows<{ n: string }>(q.sql, q.params, { log_comment: 'winnow:index_verify' });
    missing += Number(r?.n ?? 0);
    progress?.({ phase: 'verify', pass: i + 1, passes, entries: missing, elapsedMs: performance.now() - t0 });
  }
  return missing;
}

/** Empties the pipeline's seen-key index and writes it again from the seen keys, compacts it, then verifies it. */
export async function rebuildSeenIndex(db: Db, p: PipelineConfig, o: RebuildOptions = {}): Promise<RebuildResult> {
  if (p.dedup.index !== 'rocksdb') {
    throw new WinnowError(
      'USAGE',
      `pipeline ${p.name} has no seen-key index to rebuild (dedup.index is ${p.dedup.index}; only rocksdb has one)`,
    );
  }
  const keep = async (): Promise<void> => {
    if (o.keepLease && !(await o.keepLease())) {
      throw new WinnowError('CONFLICT', `pipeline ${p.name}: lost its lease during the index rebuild`, {
        hint: 'the index is incomplete: stop the daemon and run winnow index rebuild again',
      });
    }
  };
  const partitions = (await db.rows<{ id: string; first: string; n: string }>(seenPartitionsSql(p))).map((r) => ({
    id: r.id,
    from: r.first,
    rows: Number(r.n),
  }));
  const seenRows = partitions.reduce((sum, x) => sum + x.rows, 0);
  const plan = planPasses(partitions, o.keysPerPass);
  const passes = plan.length;
  await keep();
  const t0 = performance.now();
  await db.command(truncateIndexSql(p));
  let written = 0;
  let readRows = 0;
  let peakMemoryBytes = 0;
  for (const [i, pass] of plan.entries()) {
    await keep();
    const q = rebuildPassSql(p, pass);
    const s = await db.command(q.sql, q.params, REBUILD_SETTINGS);
    written += s.writtenRows;
    readRows += s.readRows;
    peakMemoryBytes = Math.max(peakMemoryBytes, s.memoryBytes);
    const { id, from } = pass.partition;
    const partition = { id, from, range: pass.range + 1, ranges: pass.ranges };
    o.progress?.({
      phase: 'write',
      pass: i + 1,
      passes,
      partition,
      entries: written,
      elapsedMs: performance.now() - t0,
    });
  }
  const writeSeconds = (performance.now() - t0) / 1000;
  let compactSeconds = 0;
  if (o.compact !== false) {
    await keep();
    o.progress?.({ phase: 'compact', pass: passes, passes, entries: written, elapsedMs: performance.now() - t0 });
    const c0 = performance.now();
    await compactIndex(db, p, keep);
    compactSeconds = (performance.now() - c0) / 1000;
  }
  const [size] = await db.rows<{ bytes: string }>(indexSizeSql(p).sql, indexSizeSql(p).params);
  const v0 = performance.now();
  const missing = o.verify === false ? 0 : await verifySeenIndex(db, p, passCount(seenRows, o.keysPerPass), o.progress);
  const entries = o.verify === false ? null : Number((await db.rows<{ n: string }>(indexEntriesSql(p)))[0]?.n ?? 0);
  return {
    passes,
    partitions: partitions.length,
    readRows,
    seenRows,
    written,
    entries,
    writeSeconds,
    compactSeconds,
    verifySeconds: (performance.now() - v0) / 1000,
    bytes: Number(size?.bytes ?? 0),
    missing,
    peakMemoryBytes,
  };
}
