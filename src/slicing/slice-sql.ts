/**
 * The SQL of one slice: which staged rows it covers (per-partition offset
 * ranges) and the windowed anti-join insert that keeps first occurrences.
 * Pure functions; values go as query parameters.
 */
import type { PipelineConfig } from '../config/schema.ts';
import { ident, qualified, renderSqlFile } from '../clickhouse/sql.ts';
import { objectNames } from '../provisioning/objects.ts';

/** Offsets from..to inclusive of one topic partition. */
export interface SliceRange {
  topic: string;
  partition: number;
  fromOffset: number;
  toOffset: number;
}

export interface ParamSql {
  sql: string;
  params: Record<string, unknown>;
}

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

export function sliceInsertSql(p: PipelineConfig, sliceId: string, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const cols = p.columns.map((c) => ident(c.name));
  const cond = rangesCondition(ranges);
  const sql = renderSqlFile(new URL('./slice_insert.sql', import.meta.url), {
    kept: qualified(n.database, n.kept),
    staging: qualified(n.database, n.staging),
    seen: qualified(n.database, n.seen),
    columns: cols.join(', '),
    // The kept row travels as a tuple (columns..., __t); these take it apart again.
    rowColumns: [...cols, '`__t`'].map((_c, i) => `tupleElement(r, ${i + 1})`).join(', '),
    key: p.dedup.key.map(ident).join(', '),
    ranges: cond.sql,
  });
  return { sql, params: { ...cond.params, slice: sliceId, windowMs: p.dedup.windowMs } };
}

/** Distinct staged messages in the slice (re-deliveries of one offset count once). */
export function sliceCountSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const cond = rangesCondition(ranges);
  return {
    // Distinct offsets per partition as a bitmap: exact, and dense offsets make it cheap
    // (1M staged rows: 25 ms, against 180 ms for LIMIT 1 BY the coordinates).
    sql: `SELECT sum(c) AS rows FROM (SELECT groupBitmap(\`_offset\`) AS c FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql} GROUP BY \`_topic\`, \`_partition\`)`,
    params: cond.params,
  };
}

/**
 * Highest staged offset per partition above the watermarks. A partition
 * absent from `next` starts at offset 0.
 */
export function stagedHeadsSql(p: PipelineConfig, next: { topic: string; partition: number; offset: number }[]): ParamSql {
  const n = objectNames(p);
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
  const where = [...known, unknown].join('\n   OR ');
  return {
    sql: `SELECT \`_topic\` AS topic, \`_partition\` AS partition, min(\`_offset\`) AS low, max(\`_offset\`) AS high
FROM ${qualified(n.database, n.staging)}
WHERE ${where}
GROUP BY topic, partition
ORDER BY topic, partition`,
    params,
  };
}
