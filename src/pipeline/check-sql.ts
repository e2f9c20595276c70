/**
 * The checker's lookups, as pure SQL builders (values as query params).
 *
 * Two ways to prove completeness and seen keys vs final rows:
 *  - the lookups (completenessSql, keptNotInFinalSql, orphanSql): every key in
 *    scope looked up in the final table. Exact, but an IN set of a minute's
 *    keys touches nearly every granule of the final table, so they cost what
 *    the final table weighs;
 *  - the cheap proof (unrepresentedSql), used by an incremental check once the
 *    counts reconcile: the staged keys of the scope are looked up in the seen
 *    keys by key hash (what a slice reads anyway) and only the keys without a
 *    kept time near their occurrence are looked up in the final table.
 */
import { ident, qualified } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames } from './objects.ts';
import { REFUSED_BY_FINAL } from './rejections.ts';
import { rangesCondition, type ParamSql, type SliceRange } from './slice-sql.ts';

function parts(p: PipelineConfig) {
  const n = objectNames(p);
  const t = (x: string): string => qualified(n.database, x);
  return { key: p.dedup.key.map(ident).join(', '), final: t(n.final), seen: t(n.seen), staging: t(n.staging), errors: t(n.errors) };
}

/** Coordinates of the messages in the ranges the final table refused: dead letters, not missing rows (rejections.ts). */
function refusedSql(errors: string, cond: string): string {
  return `SELECT _topic, _partition, _offset FROM ${errors} WHERE (${cond}) AND startsWith(__error, {refused:String})`;
}

/** I2 by lookup: processed staged keys (of the ranges) with no row in the final table. */
export function completenessSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const x = parts(p);
  const cond = rangesCondition(ranges);
  const staged = `SELECT ${x.key} FROM ${x.staging} WHERE ${cond.sql}`;
  // The final table is looked up by the staged keys, so its primary key (the dedup key by default) prunes.
  return {
    sql: `SELECT count() AS missing, groupArray(10)(k) AS examples FROM (
         SELECT DISTINCT toString(tuple(${x.key})) AS k FROM ${x.staging}
         WHERE (${cond.sql}) AND (${x.key}) NOT IN (SELECT ${x.key} FROM ${x.final} WHERE (${x.key}) IN (${staged}))
           AND (_topic, _partition, _offset) NOT IN (${refusedSql(x.errors, cond.sql)}))`,
    params: { ...cond.params, refused: REFUSED_BY_FINAL },
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

/**
 * The cheap proof: staged keys of the ranges (refused messages aside) with no
 * kept time within the window of their first occurrence, or of their first
 * recent one (seen keys older than the window may have expired). The slice
 * insert keeps an occurrence or drops it for a kept time closer than the
 * window, so in a consistent pipeline there are none; with the counts
 * reconciled (every kept key has its final row) that proves I2 and "final
 * row without seen key" for the scope. Any key found is looked up in the
 * final table (`inFinal`), and the check then takes the lookups to classify
 * and repair it.
 */
export function unrepresentedSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const x = parts(p);
  const cond = rangesCondition(ranges);
  const near = (t: string): string => `arrayExists(x -> abs(x - toUnixTimestamp64Milli(${t})) < {w:Int64}, z.ts)`;
  return {
    sql: `WITH staged AS MATERIALIZED (
          SELECT ${x.key}, min(\`__t\`) AS t, minIf(\`__t\`, \`__t\` > now64(3) - toIntervalMillisecond({w:Int64})) AS tr,
            countIf(\`__t\` > now64(3) - toIntervalMillisecond({w:Int64})) > 0 AS recent
          FROM ${x.staging}
          WHERE (${cond.sql}) AND (_topic, _partition, _offset) NOT IN (${refusedSql(x.errors, cond.sql)})
          GROUP BY ${x.key}),
        candidates AS MATERIALIZED (
          SELECT ${x.key} FROM staged AS s
          LEFT JOIN (
            SELECT ${x.key}, groupArray(toUnixTimestamp64Milli(\`__t\`)) AS ts FROM ${x.seen}
            PREWHERE \`__h\` IN (SELECT sipHash64(${x.key}) FROM ${x.staging} WHERE ${cond.sql})
            GROUP BY ${x.key}) AS z USING (${x.key})
          WHERE NOT ${near('s.t')} OR (s.recent AND NOT ${near('s.tr')}))
        SELECT count() AS keys, countIf(inFinal) AS inFinal, groupArray(10)(toString(tuple(${x.key}))) AS examples FROM (
          SELECT ${x.key}, (${x.key}) IN (SELECT ${x.key} FROM ${x.final} WHERE (${x.key}) IN (SELECT ${x.key} FROM candidates)) AS inFinal
          FROM candidates)`,
    params: { ...cond.params, w: p.dedup.windowMs, refused: REFUSED_BY_FINAL },
  };
}
