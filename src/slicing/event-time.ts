/**
 * The Kafka timestamp of a slice's oldest message, for the end-to-end latency
 * metric (Kafka timestamp -> slice committed). Read beside the slice's counts,
 * over the same primary-key ranges, one column; only when metrics want it.
 */
import type { Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames } from '../provisioning/objects.ts';
import { rangesCondition, type SliceRange } from './slice.ts';

export const EVENT_TIME_TAG = 'winnow:slice_oldest_event';

export function oldestEventSql(p: PipelineConfig, ranges: SliceRange[]): ParamSql {
  const n = objectNames(p);
  const cond = rangesCondition(ranges);
  return {
    sql: `SELECT toUnixTimestamp64Milli(min(\`_timestamp_ms\`)) AS oldest FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql}`,
    params: cond.params,
  };
}

/** Unix ms of the oldest Kafka timestamp in the ranges; null when none is known. */
export async function oldestEvent(db: Db, p: PipelineConfig, ranges: SliceRange[]): Promise<number | null> {
  const q = oldestEventSql(p, ranges);
  const rows = await db.rows<{ oldest: string | number | null }>(q.sql, q.params, { log_comment: EVENT_TIME_TAG });
  const v = rows[0]?.oldest;
  return v === null || v === undefined ? null : Number(v);
}
