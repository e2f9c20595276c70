/**
 * Rows the final table refuses (a CHECK constraint, a value its column type
 * cannot hold) must not stall the pipeline, and must not be lost. A refused
 * slice is split in halves, slice after slice, until each refused message
 * stands alone; that message goes to the dead letters with ClickHouse's error
 * (deadLetterRefused, below)
 * and its slice commits with it counted as rejected. Everything else commits
 * exactly once, as smaller slices.
 *
 * The slice insert writes the final table and the seen keys side by side, so
 * a refused attempt can leave seen keys whose final rows never landed. Those
 * would block later occurrences of their keys (data lost) and so are deleted
 * before the slice is split or its message dead-lettered. With the seen-key
 * index (dedup.index rocksdb) the attempt's view may also have written index
 * entries naming the slice; they are set back to what the other slices' seen
 * keys say (restoreRefusedIndexEntries).
 */
import type { Db } from '../clickhouse/client.ts';
import { ClickHouseFailure } from '../clickhouse/client.ts';
import { UNTOKENED_INSERT_SELECT } from '../clickhouse/token-dedup.ts';
import { ident, qualified, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import type { NextOffset } from './checkpoints.ts';
import { objectNames, seenKvHashSql, seenKvSliceSql } from '../provisioning/objects.ts';
import { rangesCondition, type SliceRange } from './slice.ts';

/**
 * ClickHouse errors caused by the values of some rows, which splitting the
 * slice can isolate. Anything else (a missing table, a revoked grant) would
 * refuse every row alike: it is retried, never dead-lettered.
 */
const ROW_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
  469, // VIOLATED_CONSTRAINT
]);

export function isRowRefusal(err: unknown): err is ClickHouseFailure {
  return err instanceof ClickHouseFailure && err.chCode !== undefined && ROW_ERROR_CODES.has(err.chCode);
}

/** ClickHouse's own words for a refusal, without the statement winnow sent: one line. */
export function refusalReason(err: ClickHouseFailure): string {
  const own = err.cause instanceof Error ? err.cause.message : err.message;
  const type = (err.cause as { type?: string } | undefined)?.type;
  const line = `ClickHouse error ${err.chCode ?? '?'}${type ? ` (${type})` : ''}: ${(own.split('\n')[0] ?? own).trim()}`;
  return line.length > 1000 ? `${line.slice(0, 1000)}…` : line;
}

/** Kafka offsets a set of ranges spans (re-delivered copies of one offset are one message). */
export function offsetCount(ranges: SliceRange[]): number {
  return ranges.reduce((s, r) => s + (r.toOffset - r.fromOffset + 1), 0);
}

/** The first half of the ranges' offsets, in range order; at least one offset. */
export function firstHalf(ranges: SliceRange[]): SliceRange[] {
  return firstOffsets(ranges, Math.floor(offsetCount(ranges) / 2));
}

/** The first `n` of the ranges' offsets, in range order; at least one offset. */
export function firstOffsets(ranges: SliceRange[], n: number): SliceRange[] {
  let budget = Math.max(1, n);
  const out: SliceRange[] = [];
  for (const r of ranges) {
    if (budget <= 0) break;
    const take = Math.min(budget, r.toOffset - r.fromOffset + 1);
    out.push({ ...r, toOffset: r.fromOffset + take - 1 });
    budget -= take;
  }
  return out;
}

/** What of the ranges lies at or above the watermarks (a partition without one: all of its range). */
export function clip(ranges: SliceRange[], next: NextOffset[]): SliceRange[] {
  const at = new Map(next.map((o) => [`${o.topic}\u0000${o.partition}`, o.offset]));
  return ranges
    .map((r) => ({
      ...r,
      fromOffset: Math.max(r.fromOffset, at.get(`${r.topic}\u0000${r.partition}`) ?? r.fromOffset),
    }))
    .filter((r) => r.fromOffset <= r.toOffset);
}

/** Watermarks as they were before a slice: each of its ranges' partitions back at the range start. */
export function rewind(next: NextOffset[], ranges: SliceRange[]): NextOffset[] {
  const from = new Map(ranges.map((r) => [`${r.topic}\u0000${r.partition}`, r.fromOffset]));
  return next.map((o) => ({ ...o, offset: from.get(`${o.topic}\u0000${o.partition}`) ?? o.offset }));
}

/** Seen keys any attempt of this slice wrote. */
export function sliceSeenCountSql(p: PipelineConfig, sliceId: string): ParamSql {
  const n = objectNames(p);
  return {
    sql: `SELECT count() AS n FROM ${qualified(n.database, n.seen)} WHERE \`__slice\` = {slice:String}`,
    params: { slice: sliceId },
  };
}

/** Deletes the seen keys this slice wrote for keys of its ranges (found by key hash). */
export function dropSliceSeenSql(p: PipelineConfig, sliceId: string, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const key = p.dedup.key.map(ident).join(', ');
  const cond = rangesCondition(ranges);
  return {
    sql: `DELETE FROM ${qualified(n.database, n.seen)} WHERE \`__slice\` = {slice:String}
       AND \`__h\` IN (SELECT sipHash64(${key}) FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql})`,
    params: { ...cond.params, slice: sliceId },
  };
}

/** Deletes the seen keys a refused attempt of this slice wrote (none when the seen view did not run). */
export async function dropRefusedSeenKeys(
  db: Db,
  p: PipelineConfig,
  sliceId: string,
  ranges: SliceRange[],
): Promise<void> {
  const count = sliceSeenCountSql(p, sliceId);
  const found = await db.rows<{ n: string }>(count.sql, count.params);
  if (Number(found[0]?.n ?? 0) === 0) return;
  const drop = dropSliceSeenSql(p, sliceId, ranges);
  await db.command(drop.sql, drop.params, { mutations_sync: '2' });
}

/**
 * dedup.index rocksdb: the index entries a refused attempt of this slice wrote
 * (its view runs beside the final table's), for keys of its ranges, set back
 * to the key's latest kept time and slice among the other slices' seen keys,
 * or to time 0 (no lookup reads an entry that old) when there is none. Run
 * after the attempt's seen keys are deleted and before the slice is split or
 * committed: a later slice trusts an entry naming another slice. Read through
 * the seen keys' primary key, for the few keys concerned; a no-op when the
 * view did not run.
 */
export function restoreRefusedIndexSql(p: PipelineConfig, sliceId: string, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const key = p.dedup.key.map(ident).join(', ');
  const cond = rangesCondition(ranges);
  const kv = qualified(n.database, n.seenKv);
  const hash = seenKvHashSql(p);
  const staging = qualified(n.database, n.staging);
  return {
    sql: `INSERT INTO ${kv} (\`h\`, \`__t\`, \`__s\`)
     WITH stale AS (
         SELECT \`h\` FROM ${kv}
         WHERE \`h\` IN (SELECT ${hash} FROM ${staging} WHERE ${cond.sql}) AND \`__s\` = ${seenKvSliceSql('{slice:String}')}
     )
     SELECT stale.h, prior.t, prior.s
     FROM stale
     LEFT JOIN (
         SELECT ${hash} AS h, max(\`__t\`) AS t, ${seenKvSliceSql('argMax(`__slice`, `__t`)')} AS s
         FROM ${qualified(n.database, n.seen)}
         WHERE (${key}) IN (SELECT ${key} FROM ${staging} WHERE (${cond.sql}) AND ${hash} IN (SELECT \`h\` FROM stale))
           AND \`__slice\` != {slice:String}
         GROUP BY h
     ) AS prior ON stale.h = prior.h`,
    params: { ...cond.params, slice: sliceId },
  };
}

/** Sets back the index entries a refused attempt of this slice wrote (dedup.index rocksdb; nothing otherwise). */
export async function restoreRefusedIndexEntries(
  db: Db,
  p: PipelineConfig,
  sliceId: string,
  ranges: SliceRange[],
): Promise<void> {
  if (p.dedup.index !== 'rocksdb') return;
  const q = restoreRefusedIndexSql(p, sliceId, ranges);
  await db.command(q.sql, q.params, {
    ...UNTOKENED_INSERT_SELECT,
    // A missing prior is time 0 and slice 0 (not NULL), whatever the user's profile says.
    join_use_nulls: 0,
    use_index_for_in_with_subqueries: 1,
  });
}

const errorsOf = (p: PipelineConfig): string => qualified(objectNames(p).database, objectNames(p).errors);

/** How a dead letter of a refused row begins; the rest is ClickHouse's error. */
export const REFUSED_BY_FINAL = 'refused by the final table: ';

/** Coordinates of the dead letters under `cond` (a condition on the coordinates) that the final table refused. */
export function refusedCoordinatesSql(p: PipelineConfig, cond: string): ParamSql {
  return {
    sql: `SELECT _topic, _partition, _offset FROM ${errorsOf(p)} WHERE (${cond}) AND startsWith(__error, {refused:String})`,
    params: { refused: REFUSED_BY_FINAL },
  };
}

/**
 * The staged message of a one-message slice the final table refused, as a
 * dead letter with the error, unless a refusal of it is there already (a
 * re-run after a crash); and how many distinct messages the ranges stage.
 */
export function refusedDeadLetterSql(
  p: PipelineConfig,
  ranges: SliceRange[],
  error: string,
): { insert: ParamSql; staged: ParamSql } {
  const n = objectNames(p);
  const cond = rangesCondition(ranges);
  const cols = p.columns.map((c) => ident(c.name)).join(', ');
  const staged = `SELECT _topic, _partition, _offset, _timestamp_ms, formatRowNoNewline('JSONEachRow', ${cols}) AS row
    FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql} ORDER BY \`__t\` LIMIT 1 BY _topic, _partition, _offset`;
  const refused = refusedCoordinatesSql(p, cond.sql);
  return {
    insert: {
      sql: `INSERT INTO ${errorsOf(p)} (_raw, __error, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
     SELECT row, {error:String}, _topic, _partition, _offset, _timestamp_ms, now64(3) FROM (${staged})
     WHERE (_topic, _partition, _offset) NOT IN (${refused.sql})`,
      params: { ...cond.params, ...refused.params, error: REFUSED_BY_FINAL + error },
    },
    staged: { sql: `SELECT uniqExact(_topic, _partition, _offset) AS n FROM (${staged})`, params: cond.params },
  };
}

/**
 * Writes the staged message of a one-message slice to the dead letters with
 * the error, unless a refusal of it is there already (a re-run after a crash).
 * Returns how many distinct messages it covers (0 or 1).
 */
export async function deadLetterRefused(
  db: Db,
  p: PipelineConfig,
  ranges: SliceRange[],
  error: string,
): Promise<number> {
  const q = refusedDeadLetterSql(p, ranges, error);
  await db.command(q.insert.sql, q.insert.params, UNTOKENED_INSERT_SELECT);
  const rows = await db.rows<{ n: string }>(q.staged.sql, q.staged.params);
  return Number(rows[0]?.n ?? 0);
}
