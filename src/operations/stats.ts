/** The numbers of one pipeline, read from ClickHouse (and Kafka's offsets when reachable). */
import type { Db } from '../clickhouse/client.ts';
import { qualified } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import type { PartitionOffsets } from '../kafka/offsets.ts';
import { objectNames, SLICES_TABLE } from '../provisioning/objects.ts';
import { REFUSED_BY_FINAL } from '../slicing/rejections.ts';
import { Checkpoints } from '../slicing/checkpoints.ts';
import { byTopicPartition } from '../kafka/partitions.ts';

export interface PartitionStats {
  topic: string;
  partition: number;
  nextOffset: number;
  stagedHigh: number | null;
  logEnd: number | null;
  consumerOffset: number | null;
  lag: number | null;
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
  lastSlice: { sliceId: string; seq: number; committedAt: string | null; durationMs: number; rowsIn: number; inserted: number; duplicates: number } | null;
  eventsPerSecond: { last1m: number; last5m: number };
  /** the daemon's most recent failure for this pipeline, if any */
  lastError: string | null;
}

const key = (topic: string, partition: number): string => `${topic}/${partition}`;

export async function pipelineStats(
  db: Db,
  p: PipelineConfig,
  kafkaOffsets: PartitionOffsets[] | undefined,
  lastError: string | null = null,
): Promise<PipelineStats> {
  const n = objectNames(p);
  const staging = qualified(n.database, n.staging);
  const errors = qualified(n.database, n.errors);
  const slices = qualified(n.database, SLICES_TABLE);
  const checkpoints = new Checkpoints(db, n.database);
  const [stagedRows, errorRows, totals, rates, last] = await Promise.all([
    db.rows<{ topic: string; partition: number; rows: string; high: string }>(
      `SELECT _topic AS topic, _partition AS partition, uniqExact(_offset) AS rows, max(_offset) AS high FROM ${staging} GROUP BY topic, partition`,
    ),
    db.rows<{ rows: string; unparsed: string }>(
      `SELECT uniqExact(_topic, _partition, _offset) AS rows, uniqExactIf(_topic, _partition, _offset, NOT startsWith(__error, {refused:String})) AS unparsed FROM ${errors}`,
      { refused: REFUSED_BY_FINAL },
    ),
    db.rows<{ inserted: string; duplicates: string; rows_in: string; rejected: string }>(
      `SELECT sum(inserted) AS inserted, sum(duplicates) AS duplicates, sum(rows_in) AS rows_in, sum(rejected) AS rejected
       FROM ${slices} WHERE pipeline = {p:String} AND status = 'committed'`,
      { p: p.name },
    ),
    db.rows<{ m1: string; m5: string }>(
      `SELECT sumIf(rows_in, committed_at > now64(3) - INTERVAL 1 MINUTE) AS m1, sumIf(rows_in, committed_at > now64(3) - INTERVAL 5 MINUTE) AS m5
       FROM ${slices} WHERE pipeline = {p:String} AND status = 'committed' AND committed_at > now64(3) - INTERVAL 5 MINUTE`,
      { p: p.name },
    ),
    checkpoints.last(p.name),
  ]);
  const staged = stagedRows.reduce((s, r) => s + Number(r.rows), 0);
  const deadLetters = Number(errorRows[0]?.rows ?? 0);
  // Refused by the final table: dead letters, but staged first, so consumed once.
  const unparsed = Number(errorRows[0]?.unparsed ?? 0);
  const inserted = Number(totals[0]?.inserted ?? 0);
  const duplicatesDropped = Number(totals[0]?.duplicates ?? 0);
  const processed = Number(totals[0]?.rows_in ?? 0);

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
      return {
        topic,
        partition,
        nextOffset,
        stagedHigh: stagedHigh.get(k) ?? null,
        logEnd: ko?.logEnd ?? null,
        consumerOffset: ko?.committed ?? null,
        lag: ko ? Math.max(0, ko.logEnd - Math.max(nextOffset, ko.logStart)) : null,
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
    refusedByFinal: Number(totals[0]?.rejected ?? 0),
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
    eventsPerSecond: { last1m: Number(rates[0]?.m1 ?? 0) / 60, last5m: Number(rates[0]?.m5 ?? 0) / 300 },
    lastError,
  };
}
