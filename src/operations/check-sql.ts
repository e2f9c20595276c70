/**
 * The checker's statements on the pipeline's tables (seen keys, final table,
 * staging), as pure SQL builders (values as query params); the checks table's
 * own statements are in checker.ts.
 *
 * Two ways to prove completeness and seen keys vs final rows:
 *  - the lookups (completenessSql, keptNotInFinalSql, orphanSql): every key in
 *    scope looked up in the final table. Exact, but an IN set of a minute's
 *    keys touches nearly every granule of the final table, so they cost what
 *    the final table weighs;
 *  - the cheap proof (scopeProofSql), used by an incremental check once the
 *    counts reconcile: one pass over the seen keys of the scope by key hash
 *    (what a slice reads anyway), no final-table lookup. Anything it finds
 *    sends the check to the exact queries, which classify and repair.
 */
import { ident, qualified, quoteString, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames, seenExpirySql, seenKvHashSql, seenTtlSeconds } from '../provisioning/objects.ts';
import { refusedCoordinatesSql } from '../slicing/rejections.ts';
import { rangesCondition, type SliceRange } from '../slicing/slice.ts';

function parts(p: PipelineConfig) {
  const n = objectNames(p);
  const t = (x: string): string => qualified(n.database, x);
  return {
    key: p.dedup.key.map(ident).join(', '),
    cols: p.columns.map((c) => ident(c.name)).join(', '),
    final: t(n.final),
    seen: t(n.seen),
    staging: t(n.staging),
  };
}

/** How many rows a query returns. */
export function countOfSql(q: ParamSql): ParamSql {
  return { sql: `SELECT count() AS n FROM (${q.sql})`, params: q.params };
}

/** Rows in the final table (vs what slices and replays inserted). */
export function finalRowsSql(p: PipelineConfig): ParamSql {
  return { sql: `SELECT count() AS n FROM ${parts(p).final}`, params: {} };
}

/** I1 on the kept keys: keys of the seen-keys scope kept twice closer than the window (recent ones). */
export function uniquenessSql(p: PipelineConfig, seenScope: ParamSql): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT count() AS violations, groupArray(10)(k) AS examples FROM (
         SELECT toString(tuple(${x.key})) AS k, arraySort(groupArray(toUnixTimestamp64Milli(\`__t\`))) AS ts
         FROM ${x.seen}
         PREWHERE ${seenScope.sql}
         WHERE \`__t\` > now64(3) - toIntervalMillisecond({w2:Int64})
         GROUP BY ${x.key}
         HAVING length(ts) > 1 AND arrayExists((a, b) -> b - a < {w:Int64}, arrayPopBack(ts), arrayPopFront(ts)))`,
    params: { ...seenScope.params, w: p.dedup.windowMs, w2: 2 * p.dedup.windowMs },
  };
}

/** I2 by lookup: processed staged keys (of the ranges) with no row in the final table. */
export function completenessSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const x = parts(p);
  const cond = rangesCondition(ranges);
  // Messages the final table refused are dead letters, not missing rows (rejections.ts).
  const refused = refusedCoordinatesSql(p, cond.sql);
  const staged = `SELECT ${x.key} FROM ${x.staging} WHERE ${cond.sql}`;
  // The final table is looked up by the staged keys, so its primary key (the dedup key by default) prunes.
  return {
    sql: `SELECT count() AS missing, groupArray(10)(k) AS examples FROM (
         SELECT DISTINCT toString(tuple(${x.key})) AS k FROM ${x.staging}
         WHERE (${cond.sql}) AND (${x.key}) NOT IN (SELECT ${x.key} FROM ${x.final} WHERE (${x.key}) IN (${staged}))
           AND (_topic, _partition, _offset) NOT IN (${refused.sql}))`,
    params: { ...cond.params, ...refused.params },
  };
}

/** Kept keys (retained state, in scope) with no row in the final table: the write that must never be lost. */
export function keptNotInFinalSql(p: PipelineConfig, seenScope: ParamSql): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT ${x.key}, \`__t\` FROM ${x.seen} PREWHERE ${seenScope.sql}
      WHERE (${x.key}) NOT IN (SELECT ${x.key} FROM ${x.final} WHERE (${x.key}) IN (SELECT ${x.key} FROM ${x.seen} PREWHERE ${seenScope.sql}))`,
    params: seenScope.params,
  };
}

/** Staged rows of kept keys missing from the final table, one per (key, time): what re-inserting them writes. */
export function fromStagingSql(p: PipelineConfig, ranges: SliceRange[], missing: ParamSql): ParamSql {
  const x = parts(p);
  const cols = p.columns.map((c) => ident(c.name)).join(', ');
  const cond = rangesCondition(ranges);
  return {
    sql: `SELECT ${cols} FROM ${x.staging} WHERE (${cond.sql}) AND tuple(${x.key}, \`__t\`) IN (${missing.sql}) LIMIT 1 BY ${x.key}, \`__t\``,
    params: { ...cond.params, ...missing.params },
  };
}

/** Re-inserts kept keys' rows missing from the final table, from staging (fromStagingSql). */
export function reinsertFinalSql(p: PipelineConfig, fromStaging: ParamSql): ParamSql {
  const x = parts(p);
  return { sql: `INSERT INTO ${x.final} (${x.cols}) ${fromStaging.sql}`, params: fromStaging.params };
}

/**
 * Seen keys recent occurrences' final rows lack: (key, time, 'repair') for
 * each key in the final table whose first recent staged occurrence has no kept
 * time within the window. Candidates first (usually none): only they are
 * looked up in the final table; the seen keys are found by key hash, as the
 * slice insert finds them.
 */
export function orphanSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const x = parts(p);
  const cond = rangesCondition(ranges);
  return {
    sql: `WITH candidates AS MATERIALIZED (
          SELECT ${x.key}, s.t AS t FROM (
            SELECT ${x.key}, min(\`__t\`) AS t FROM ${x.staging}
            WHERE (${cond.sql}) AND \`__t\` > now64(3) - toIntervalMillisecond({w:Int64})
            GROUP BY ${x.key}) AS s
          LEFT JOIN (
            SELECT ${x.key}, groupArray(toUnixTimestamp64Milli(\`__t\`)) AS ts FROM ${x.seen}
            PREWHERE \`__h\` IN (SELECT sipHash64(${x.key}) FROM ${x.staging} WHERE ${cond.sql})
            GROUP BY ${x.key}) AS z USING (${x.key})
          WHERE NOT arrayExists(x -> abs(x - toUnixTimestamp64Milli(s.t)) < {w:Int64}, z.ts))
        SELECT ${x.key}, t AS \`__t\`, 'repair' AS \`__slice\` FROM candidates
        WHERE (${x.key}) IN (SELECT ${x.key} FROM ${x.final} WHERE (${x.key}) IN (SELECT ${x.key} FROM candidates))`,
    params: { ...cond.params, w: p.dedup.windowMs },
  };
}

/** Gives final rows their missing seen keys back (orphanSql). */
export function restoreSeenSql(p: PipelineConfig, orphan: ParamSql): ParamSql {
  const x = parts(p);
  return { sql: `INSERT INTO ${x.seen} (${x.key}, \`__t\`, \`__slice\`) ${orphan.sql}`, params: orphan.params };
}

/** Seen-key partitions whose every key has outlived its TTL (time and write time both). */
export function expiredSeenPartitionsSql(p: PipelineConfig): ParamSql {
  const x = parts(p);
  return {
    // Only partitions holding a key older than the TTL can qualify: partition pruning by \`__t\` reads just those.
    sql: `SELECT _partition_id AS id FROM ${x.seen}
       WHERE _partition_id IN (SELECT DISTINCT _partition_id FROM ${x.seen} WHERE \`__t\` < now64(3) - toIntervalSecond({ttl:UInt32}))
       GROUP BY id HAVING max(${seenExpirySql(p)}) < now()`,
    params: { ttl: seenTtlSeconds(p) },
  };
}

/** Drops a seen-keys partition (by its id, as system.parts names it). */
export function dropSeenPartitionSql(p: PipelineConfig, partitionId: string): string {
  return `ALTER TABLE ${parts(p).seen} DROP PARTITION ID ${quoteString(partitionId)}`;
}

/**
 * The cheap proof, one pass over the seen keys of the scope (found by key
 * hash, as the slice insert finds them) and grouped by that hash (8 bytes,
 * however wide the key), counting what must be 0 in a consistent pipeline:
 *  - doubled or too close: a hash kept twice at the same time (a doubled
 *    slice's copies), or twice closer than the window (I1);
 *  - unrepresented: staged keys of the ranges (refused messages aside) with
 *    no kept time within the window of their first occurrence, or of their
 *    first recent one (older seen keys may have expired). The slice insert
 *    keeps an occurrence or drops it for a kept time closer than the window,
 *    so there are none; with the counts reconciled (every kept key has its
 *    final row) that proves I2 and "final row without seen key" for the scope.
 * Two keys sharing a hash can only add to doubled or too close (the check
 * then takes the exact queries); to hide an unrepresented key, its hash
 * would have to equal that of another key of the scope kept near the same
 * time (about 1 in 2^64 per pair).
 */
export function scopeProofSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const x = parts(p);
  const cond = rangesCondition(ranges);
  const ms = (t: string): string => `toUnixTimestamp64Milli(${t})`;
  const near = (t: string): string => `arrayExists(x -> abs(x - ${ms(t)}) < {w:Int64}, z.ts)`;
  const recent = (w: string): string => `\`__t\` > now64(3) - toIntervalMillisecond(${w})`;
  const refused = refusedCoordinatesSql(p, cond.sql);
  return {
    sql: `WITH staged AS MATERIALIZED (
          SELECT sipHash64(${x.key}) AS h, min(\`__t\`) AS t, minIf(\`__t\`, ${recent('{w:Int64}')}) AS tr, countIf(${recent('{w:Int64}')}) > 0 AS recent
          FROM ${x.staging}
          WHERE (${cond.sql}) AND (_topic, _partition, _offset) NOT IN (${refused.sql})
          GROUP BY h),
        kept AS MATERIALIZED (
          SELECT \`__h\` AS h, arraySort(groupArray(${ms('`__t`')})) AS ts
          FROM ${x.seen}
          PREWHERE \`__h\` IN (SELECT sipHash64(${x.key}) FROM ${x.staging} WHERE ${cond.sql})
          GROUP BY h)
        SELECT
          -- Adjacent kept times of a hash: equal (a doubled copy, or a key kept twice at once), or
          -- closer than the window among the recent ones (the range the uniqueness check reads).
          (SELECT countIf(arrayExists((a, b) -> b = a OR (b - a < {w:Int64} AND a > ${ms('now64(3)')} - {w2:Int64}), arrayPopBack(ts), arrayPopFront(ts))) FROM kept) AS doubledOrTooClose,
          (SELECT count() FROM staged AS s LEFT JOIN kept AS z USING (h) WHERE NOT ${near('s.t')} OR (s.recent AND NOT ${near('s.tr')})) AS unrepresented`,
    params: { ...cond.params, ...refused.params, w: p.dedup.windowMs, w2: 2 * p.dedup.windowMs },
  };
}

/**
 * dedup.index rocksdb: the keys of the seen-keys scope, written within the
 * window, whose seen-key index entry is missing or older than their latest
 * kept time (an entry only moves forward, so it is at least every kept time of
 * its key). Each row: the key hash and the entry it should have (its latest
 * kept time and that row's slice), as indexRepairSql writes it.
 */
export function indexLagSql(p: PipelineConfig, seenScope: ParamSql): ParamSql {
  const x = parts(p);
  const kv = qualified(p.sink.database, objectNames(p).seenKv);
  const hash = seenKvHashSql(p);
  const scoped = `FROM ${x.seen} PREWHERE ${seenScope.sql} WHERE \`__at\` >= now() - toIntervalSecond({wS:Int64})`;
  return {
    sql: `SELECT landed.h AS h, landed.t AS t, landed.s AS s
       FROM (SELECT ${hash} AS h, max(\`__t\`) AS t, argMax(sipHash64(\`__slice\`), \`__t\`) AS s ${scoped} GROUP BY h) AS landed
       LEFT JOIN (SELECT \`h\` AS h, \`__t\` AS kv_t FROM ${kv} WHERE \`h\` IN (SELECT ${hash} ${scoped})) AS entries USING (h)
       WHERE entries.kv_t < landed.t`,
    params: { ...seenScope.params, wS: Math.ceil(p.dedup.windowMs / 1000) },
  };
}

/** Writes the entries indexLagSql finds missing or behind (the slice's index step again, for any slice). */
export function indexRepairSql(p: PipelineConfig, lag: ParamSql): ParamSql {
  const kv = qualified(p.sink.database, objectNames(p).seenKv);
  return { sql: `INSERT INTO ${kv} (\`h\`, \`__t\`, \`__s\`) ${lag.sql}`, params: lag.params };
}
