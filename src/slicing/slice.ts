/**
 * One slice, in one place: which staged rows it covers (per-partition offset
 * ranges), the windowed anti-join insert that keeps first occurrences
 * (slice_insert.sql, beside this file) with the settings it runs with, and the
 * counts that describe it. Normal slices, replays and the refused-row search
 * all run it through here. Builders are pure (values go as query parameters);
 * the runners tag their statements with a `log_comment` (SLICE_TAGS), which
 * system.query_log records and the benchmark times them by.
 */
import type { ClickHouseSettings } from '@clickhouse/client';
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified, renderSqlFile, type ParamSql } from '../clickhouse/sql.ts';
import { tokenInsertSelect } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames, seenKvHashSql } from '../provisioning/objects.ts';
import type { NextOffset } from './checkpoints.ts';
import type { StagedHead } from './plan.ts';

/** Offsets from..to inclusive of one topic partition. */
export interface SliceRange {
  topic: string;
  partition: number;
  fromOffset: number;
  toOffset: number;
}

/** `log_comment` of each statement a slice runs besides its checkpoints (CHECKPOINT_TAGS). */
export const SLICE_TAGS = {
  insert: 'winnow:slice_insert',
  countStaged: 'winnow:slice_count_staged',
  countKept: 'winnow:slice_count_kept',
  heads: 'winnow:slice_heads',
} as const;

/** `(topic, partition, offset in range) OR ...`, with one parameter set per range so the primary key prunes. */
export function rangesCondition(ranges: SliceRange[], prefix = 'r'): ParamSql {
  if (ranges.length === 0) return { sql: '0', params: {} };
  const params: Record<string, unknown> = {};
  const parts = ranges.map((r, i) => {
    params[`${prefix}t${i}`] = r.topic;
    params[`${prefix}p${i}`] = r.partition;
    params[`${prefix}f${i}`] = r.fromOffset;
    params[`${prefix}e${i}`] = r.toOffset;
    return `(\`_topic\` = {${prefix}t${i}:String} AND \`_partition\` = {${prefix}p${i}:UInt32} AND \`_offset\` BETWEEN {${prefix}f${i}:UInt64} AND {${prefix}e${i}:UInt64})`;
  });
  return { sql: parts.join('\n       OR '), params };
}

/** The slice insert: first occurrences of the ranges' keys not kept within the window, into the kept table's two views. */
export function sliceInsertSql(p: PipelineConfig, sliceId: string, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const cols = p.columns.map((c) => ident(c.name));
  const cond = rangesCondition(ranges);
  const key = p.dedup.key.map(ident).join(', ');
  const staging = qualified(n.database, n.staging);
  const seen = qualified(n.database, n.seen);
  // How the kept times of the slice's keys are found: a scan of the seen keys' hashes, or the seen-key index.
  const kv = p.dedup.index === 'rocksdb';
  const keptNear = kv
    ? renderSqlFile(new URL('./kept_near_kv.sql', import.meta.url), {
        seenKv: qualified(n.database, n.seenKv),
        kvHash: seenKvHashSql(p),
        staging,
        seen,
        key,
        ranges: cond.sql,
      })
    : renderSqlFile(new URL('./kept_near_scan.sql', import.meta.url), { seen, staging, key, ranges: cond.sql });
  const sql = renderSqlFile(new URL('./slice_insert.sql', import.meta.url), {
    kept: qualified(n.database, n.kept),
    staging,
    keptNear,
    columns: cols.join(', '),
    // A contested key's kept row travels as a tuple (columns..., __t[, __kv_write]); these take it apart again.
    keptRowColumns: [...cols, '`__t`'].map((_c, i) => `tupleElement(kept_row, ${i + 1})`).join(', '),
    key,
    ranges: cond.sql,
    ...kvWriteParts(p, key, cols.length + 1),
  });
  return { sql, params: { ...cond.params, slice: sliceId, windowMs: p.dedup.windowMs } };
}

/**
 * dedup.index rocksdb (0015): the kept rows' `__kv_write`, which tells the
 * index's view what to write (the key's entry as the slice read it in
 * kv_keys, so the view looks nothing up). 1 on the key's latest kept row of
 * the insert when its entry is not later, else 0; so a key's entry only moves
 * forward, and a re-run (whose entry, if its first attempt's view landed, is
 * that attempt's latest kept row, the same row again) writes the same entries.
 * A key staged once is its only kept row: 0 when in kv_ahead. A contested
 * key's kept rows are in time order (kept times are a window apart), its
 * latest the last; its entry comes by a join of the few contested keys to
 * kv_keys (0 when it has none in the window: older than any row of the
 * slice). Empty for the scan: its insert is as before.
 */
function kvWriteParts(p: PipelineConfig, key: string, tIndex: number): Record<string, string> {
  if (p.dedup.index !== 'rocksdb') {
    return {
      kvWriteColumn: '',
      kvWriteSingle: '',
      kvWriteKept: '',
      kvEntryJoin: '',
      keptRowsOpen: '',
      keptRowsClose: '',
    };
  }
  return {
    kvWriteColumn: ', `__kv_write`',
    kvWriteSingle: `, (${key}) NOT IN kv_ahead`,
    kvWriteKept: `, tupleElement(kept_row, ${tIndex + 1})`,
    kvEntryJoin: `\n    LEFT JOIN (SELECT ${key}, toUnixTimestamp64Milli(kv_t) AS kv_entry_ms FROM kv_keys) AS kv_entries USING (${key})`,
    keptRowsOpen: `arrayMap((r, j) -> tupleConcat(r, tuple(toUInt8(j = length(kept_rows) AND toUnixTimestamp64Milli(tupleElement(r, ${tIndex})) >= ifNull(kv_entry_ms, 0)))),\n        `,
    keptRowsClose: ' AS kept_rows, arrayEnumerate(kept_rows))',
  };
}

/** The settings of the slice insert: `token` (the slice id) makes a re-run a no-op (token-dedup.ts). */
export function sliceInsertSettings(p: PipelineConfig, token: string): ClickHouseSettings {
  // One block per insert, so a re-run with the same token is recognised whole.
  const big = String(Math.max(10_000_000, p.schedule.maxSliceRows * 4));
  return {
    min_insert_block_size_rows: big,
    min_insert_block_size_bytes: '0',
    max_insert_block_size: big,
    ...tokenInsertSelect(token),
    // A slice's key hashes touch nearly every granule of the seen keys anyway; building an
    // index set only costs time and memory (bench: 1M keys vs 20M seen, 1.5 s/753 MB -> 0.55 s/90 MB).
    // With the seen-key index, the seen keys are read only for the few keys it cannot decide,
    // through their primary key: that lookup needs the index set.
    use_index_for_in_with_subqueries: p.dedup.index === 'rocksdb' ? 1 : 0,
    // The final table and the seen keys are written side by side. One after the other, the
    // views serialise the whole insert (bench: 1M rows at 20M seen keys, 2.2 s -> 1.3 s).
    // Any view failing still fails the insert, and a re-run still skips what landed.
    parallel_view_processing: 1,
    // The seen-keys lookup and the set of keys that need deciding are each computed once,
    // though used twice (bench: 1M rows at 20M seen keys, 1.47 s -> 0.95 s, half the memory).
    enable_materialized_cte: 1,
    // dedup.index rocksdb: the seen-key index's view (0014) joins the kept rows to their entries
    // by the index's primary key: a direct join is point lookups, any other reads the whole index.
    ...(p.dedup.index === 'rocksdb'
      ? { join_algorithm: 'direct,parallel_hash,hash' as ClickHouseSettings['join_algorithm'] }
      : {}),
    log_comment: SLICE_TAGS.insert,
  };
}

/** Keeps the first occurrences of the ranges' keys not seen within the window; `sliceId` is the token, so a re-run is a no-op. */
export function dedupInsert(db: Db, p: PipelineConfig, sliceId: string, ranges: SliceRange[]): Promise<unknown> {
  const ins = sliceInsertSql(p, sliceId, ranges);
  return db.command(ins.sql, ins.params, sliceInsertSettings(p, sliceId));
}

/** Distinct staged messages in the ranges (re-deliveries of one offset count once). */
export function stagedCountSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const cond = rangesCondition(ranges);
  return {
    // Distinct offsets per partition as a bitmap: exact, and dense offsets make it cheap
    // (1M staged rows: 25 ms, against 180 ms for LIMIT 1 BY the coordinates).
    sql: `SELECT sum(c) AS rows FROM (SELECT groupBitmap(\`_offset\`) AS c FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql} GROUP BY \`_topic\`, \`_partition\`)`,
    params: cond.params,
  };
}

export async function countStaged(db: Db, p: PipelineConfig, ranges: SliceRange[]): Promise<number> {
  const q = stagedCountSql(p, ranges);
  const rows = await db.rows<{ rows: string }>(q.sql, q.params, { log_comment: SLICE_TAGS.countStaged });
  return Number(rows[0]?.rows ?? 0);
}

/**
 * Rows a slice kept, read back from the seen keys (right after a resumed,
 * deduplicated insert too). Found by key hash, like the slice's own lookup;
 * counted by (key, t), which no two kept rows share, so a seen key written
 * twice still counts once. A kept row carries the time of its staged row, so
 * only seen keys between the slice's first and last staged time are read: the
 * partitions of other times are pruned (with a long window the seen keys hold
 * twice the window in partitions up to a day wide; bench/README.md).
 */
export function keptCountSql(p: PipelineConfig, sliceId: string, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const key = p.dedup.key.map(ident).join(', ');
  const cond = rangesCondition(ranges);
  const staging = qualified(n.database, n.staging);
  return {
    sql: `WITH (SELECT (min(\`__t\`), max(\`__t\`)) FROM ${staging} WHERE ${cond.sql}) AS bounds
     SELECT uniqExact(${key}, \`__t\`) AS kept FROM ${qualified(n.database, n.seen)}
     PREWHERE \`__h\` IN (SELECT sipHash64(${key}) FROM ${staging} WHERE ${cond.sql})
     WHERE \`__slice\` = {slice:String}
       AND \`__t\` >= tupleElement(bounds, 1) AND \`__t\` <= tupleElement(bounds, 2)`,
    params: { ...cond.params, slice: sliceId },
  };
}

export async function countKept(db: Db, p: PipelineConfig, sliceId: string, ranges: SliceRange[]): Promise<number> {
  const q = keptCountSql(p, sliceId, ranges);
  const rows = await db.rows<{ kept: string }>(q.sql, q.params, {
    use_index_for_in_with_subqueries: 0,
    log_comment: SLICE_TAGS.countKept,
  });
  return Number(rows[0]?.kept ?? 0);
}

/**
 * The staged rows at or above the watermarks: per partition of `next` from its offset on, and every partition
 * absent from `next` from offset 0. Shared by the slice plan and the stats' lag in seconds.
 */
export function aboveWatermarks(next: readonly NextOffset[]): { where: string; params: Record<string, unknown> } {
  const params: Record<string, unknown> = {};
  const known = next.map((w, i) => {
    params[`wt${i}`] = w.topic;
    params[`wp${i}`] = w.partition;
    params[`wo${i}`] = w.offset;
    return `(\`_topic\` = {wt${i}:String} AND \`_partition\` = {wp${i}:UInt32} AND \`_offset\` >= {wo${i}:UInt64})`;
  });
  const unknown =
    next.length === 0
      ? '1'
      : `(\`_topic\`, \`_partition\`) NOT IN (${next.map((_w, i) => `({wt${i}:String}, {wp${i}:UInt32})`).join(', ')})`;
  return { where: [...known, unknown].join('\n   OR '), params };
}

/**
 * Highest staged offset per partition above the watermarks. A partition
 * absent from `next` starts at offset 0.
 */
export function stagedHeadsSql(p: PipelineConfig, next: NextOffset[]): ParamSql {
  const n = objectNames(p);
  const { where, params } = aboveWatermarks(next);
  return {
    sql: `SELECT \`_topic\` AS topic, \`_partition\` AS partition, min(\`_offset\`) AS low, max(\`_offset\`) AS high
FROM ${qualified(n.database, n.staging)}
WHERE ${where}
GROUP BY topic, partition
ORDER BY topic, partition`,
    params,
  };
}

/** What staging holds above the watermarks, per partition: what the next slice can cover. */
export async function stagedHeads(db: Db, p: PipelineConfig, next: NextOffset[]): Promise<StagedHead[]> {
  const q = stagedHeadsSql(p, next);
  const rows = await db.rows<{ topic: string; partition: number; low: string; high: string }>(q.sql, q.params, {
    log_comment: SLICE_TAGS.heads,
  });
  return rows.map((r) => ({ topic: r.topic, partition: r.partition, low: Number(r.low), high: Number(r.high) }));
}
