/** The numbers of one pipeline, read from ClickHouse (and Kafka's offsets when reachable). */
import type { Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import type { PartitionOffsets } from '../kafka/offsets.ts';
import { objectNames } from '../provisioning/objects.ts';
import { Checkpoints, type NextOffset } from '../slicing/checkpoints.ts';
import { aboveWatermarks } from '../slicing/slice.ts';
import { deadLetterCounts } from './deadletters.ts';
import { byTopicPartition } from '../kafka/partitions.ts';

export interface PartitionStats {
  topic: string;
  partition: number;
  nextOffset: number;
  stagedHigh: number | null;
  logEnd: number | null;
  consumerOffset: number | null;
  lag: number | null;
  /**
   * seconds since the Kafka timestamp of the oldest staged message not yet in a
   * committed slice; 0 when there is no lag; null when messages lag in Kafka
   * but none of them is staged yet (or Kafka is unreachable and nothing waits)
   */
  lagSeconds: number | null;
}

export interface PipelineStats {
  name: string;
  /** staged + dead letters that never reached staging */
  messagesConsumed: number;
  staged: number;
  inserted: number;
  duplicatesDropped: number;
  /** duplicatesDropped / (inserted + duplicatesDropped), 0 when none */
  duplicateRatio: number;
  deadLetters: number;
  /** staged messages the final table refused (also dead letters) */
  refusedByFinal: number;
  /** staged but not yet in a committed slice */
  pendingRows: number;
  partitions: PartitionStats[];
  lastSlice: {
    sliceId: string;
    seq: number;
    committedAt: string | null;
    durationMs: number;
    rowsIn: number;
    inserted: number;
    duplicates: number;
  } | null;
  eventsPerSecond: { last1m: number; last5m: number };
  /** the daemon's most recent failure for this pipeline, if any */
  lastError: string | null;
}

const key = (topic: string, partition: number): string => `${topic}/${partition}`;

/** Distinct staged messages and the highest staged offset, per partition. */
export function stagedPerPartitionSql(p: PipelineConfig): ParamSql {
  const n = objectNames(p);
  return {
    sql: `SELECT _topic AS topic, _partition AS partition, uniqExact(_offset) AS rows, max(_offset) AS high FROM ${qualified(n.database, n.staging)} GROUP BY topic, partition`,
    params: {},
  };
}

/** Staged rows not yet in a committed slice (pipelineStats' pendingRows, without the rest). */
export async function pendingRows(db: Db, p: PipelineConfig): Promise<number> {
  const perPartition = stagedPerPartitionSql(p);
  const [stagedRows, totals] = await Promise.all([
    db.rows<{ rows: string }>(perPartition.sql, perPartition.params),
    new Checkpoints(db, p.sink.database).committedTotals(p.name),
  ]);
  return Math.max(0, stagedRows.reduce((s, r) => s + Number(r.rows), 0) - totals.rowsIn);
}

/** Per partition, the Kafka timestamp of the oldest staged message at or above the next slice's offset. */
export function oldestPendingSql(p: PipelineConfig, next: NextOffset[]): ParamSql {
  const n = objectNames(p);
  const { where, params } = aboveWatermarks(next);
  return {
    sql: `SELECT _topic AS topic, _partition AS partition, toUnixTimestamp64Milli(min(_timestamp_ms)) AS oldest
FROM ${qualified(n.database, n.staging)}
WHERE ${where}
GROUP BY topic, partition`,
    params,
  };
}

export async function pipelineStats(
  db: Db,
  p: PipelineConfig,
  kafkaOffsets: PartitionOffsets[] | undefined,
  lastError: string | null = null,
): Promise<PipelineStats> {
  const checkpoints = new Checkpoints(db, p.sink.database);
  const perPartition = stagedPerPartitionSql(p);
  const [stagedRows, errors, totals, rates, last] = await Promise.all([
    db.rows<{ topic: string; partition: number; rows: string; high: string }>(perPartition.sql, perPartition.params),
    deadLetterCounts(db, p),
    checkpoints.committedTotals(p.name),
    checkpoints.committedRates(p.name),
    checkpoints.last(p.name),
  ]);
  const pendingSql = oldestPendingSql(p, last?.nextOffsets ?? []);
  const pending = await db.rows<{ topic: string; partition: number; oldest: string | number | null }>(
    pendingSql.sql,
    pendingSql.params,
  );
  const oldestPending = new Map(
    pending.flatMap((r) => (r.oldest === null ? [] : [[key(r.topic, r.partition), Number(r.oldest)] as const])),
  );
  const now = Date.now();
  const staged = stagedRows.reduce((s, r) => s + Number(r.rows), 0);
  const deadLetters = errors.total;
  // Refused by the final table: dead letters, but staged first, so consumed once.
  const unparsed = errors.unparsed;
  const inserted = totals.inserted;
  const duplicatesDropped = totals.duplicates;
  const processed = totals.rowsIn;

  const next = new Map((last?.nextOffsets ?? []).map((o) => [key(o.topic, o.partition), o.offset]));
  const stagedHigh = new Map(stagedRows.map((r) => [key(r.topic, r.partition), Number(r.high)]));
  const kafkaBy = new Map((kafkaOffsets ?? []).map((o) => [key(o.topic, o.partition), o]));
  const allKeys = new Set([...next.keys(), ...stagedHigh.keys(), ...kafkaBy.keys()]);
  const partitions: PartitionStats[] = [...allKeys]
    .map((k) => {
      const i = k.lastIndexOf('/');
      const topic = k.slice(0, i);
      const partition = Number(k.slice(i + 1));
      const ko = kafkaBy.get(k);
      const nextOffset = next.get(k) ?? 0;
      const lag = ko ? Math.max(0, ko.logEnd - Math.max(nextOffset, ko.logStart)) : null;
      const oldest = oldestPending.get(k);
      return {
        topic,
        partition,
        nextOffset,
        stagedHigh: stagedHigh.get(k) ?? null,
        logEnd: ko?.logEnd ?? null,
        consumerOffset: ko?.committed ?? null,
        lag,
        lagSeconds: oldest !== undefined ? Math.max(0, (now - oldest) / 1000) : lag === 0 ? 0 : null,
      };
    })
    .sort(byTopicPartition);

  const lastCommitted = last?.status === 'committed' ? last : undefined;
  return {
    name: p.name,
    messagesConsumed: staged + unparsed,
    staged,
    inserted,
    duplicatesDropped,
    duplicateRatio: inserted + duplicatesDropped === 0 ? 0 : duplicatesDropped / (inserted + duplicatesDropped),
    deadLetters,
    refusedByFinal: totals.rejected,
    pendingRows: Math.max(0, staged - processed),
    partitions,
    lastSlice: lastCommitted
      ? {
          sliceId: lastCommitted.sliceId,
          seq: lastCommitted.seq,
          committedAt: lastCommitted.committedAt,
          durationMs: lastCommitted.durationMs,
          rowsIn: lastCommitted.rowsIn,
          inserted: lastCommitted.inserted,
          duplicates: lastCommitted.duplicates,
        }
      : null,
    eventsPerSecond: { last1m: rates.m1 / 60, last5m: rates.m5 / 300 },
    lastError,
  };
}
