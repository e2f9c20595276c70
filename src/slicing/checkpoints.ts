/**
 * Slices as recorded in winnow_slices: a 'planned' row is written before the
 * dedup insert and a 'committed' row after it, so a controller that dies
 * between the two re-runs exactly the same slice (same ranges, same
 * deduplication token) instead of planning a different one.
 */
import type { Db } from '../clickhouse/client.ts';
import { qualified } from '../clickhouse/sql.ts';
import { tokenInsert } from '../clickhouse/token-dedup.ts';
import { SLICES_TABLE } from '../provisioning/objects.ts';
import type { SliceRange } from './slice.ts';

export interface NextOffset {
  topic: string;
  partition: number;
  offset: number;
}

export interface SliceRecord {
  pipeline: string;
  seq: number;
  sliceId: string;
  /** 'split': the final table refused some of the slice's rows; the next slice is `ranges`, its first half */
  status: 'planned' | 'committed' | 'split';
  ranges: SliceRange[];
  nextOffsets: NextOffset[];
  rowsIn: number;
  inserted: number;
  duplicates: number;
  /** messages the final table refused, now in the dead letters */
  rejected: number;
  plannedAt: string;
  committedAt: string | null;
  durationMs: number;
}

interface Row {
  pipeline: string;
  seq: string;
  slice_id: string;
  status: 'planned' | 'committed' | 'split';
  ranges: { topic: string; partition: number; from_offset: string; to_offset: string }[];
  next_offsets: { topic: string; partition: number; offset: string }[];
  rows_in: string;
  inserted: string;
  duplicates: string;
  rejected: string;
  planned_at: string;
  committed_at: string | null;
  duration_ms: number;
}

function fromRow(r: Row): SliceRecord {
  return {
    pipeline: r.pipeline,
    seq: Number(r.seq),
    sliceId: r.slice_id,
    status: r.status,
    ranges: r.ranges.map((x) => ({ topic: x.topic, partition: x.partition, fromOffset: Number(x.from_offset), toOffset: Number(x.to_offset) })),
    nextOffsets: r.next_offsets.map((x) => ({ topic: x.topic, partition: x.partition, offset: Number(x.offset) })),
    rowsIn: Number(r.rows_in),
    inserted: Number(r.inserted),
    duplicates: Number(r.duplicates),
    rejected: Number(r.rejected),
    plannedAt: r.planned_at,
    committedAt: r.committed_at,
    durationMs: r.duration_ms,
  };
}

export class Checkpoints {
  private readonly table: string;
  constructor(
    private readonly db: Db,
    database: string,
  ) {
    this.table = qualified(database, SLICES_TABLE);
  }

  /** The newest slice of a pipeline; a committed or split row wins over the planned row of the same seq. */
  async last(pipeline: string): Promise<SliceRecord | undefined> {
    const rows = await this.db.rows<Row>(
      `SELECT * FROM ${this.table} WHERE pipeline = {pipeline:String} ORDER BY seq DESC, status DESC LIMIT 1`,
      { pipeline },
    );
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async recent(pipeline: string, limit: number): Promise<SliceRecord[]> {
    const rows = await this.db.rows<Row>(
      `SELECT * FROM ${this.table} WHERE pipeline = {pipeline:String} ORDER BY seq DESC, status DESC LIMIT 1 BY seq LIMIT {limit:UInt32}`,
      { pipeline, limit },
    );
    return rows.map(fromRow);
  }

  /**
   * Writes one checkpoint row. Token-deduplicated per (slice, status): a daemon
   * that lost its lease while finishing a slice the next holder resumed, or a
   * retried write, cannot add a second 'committed' row (its counts would be summed twice).
   */
  async record(s: SliceRecord): Promise<void> {
    await this.db.command(
      `INSERT INTO ${this.table} (pipeline, seq, slice_id, status, ranges, next_offsets, rows_in, inserted, duplicates, rejected, planned_at, committed_at, duration_ms)
       VALUES ({pipeline:String}, {seq:UInt64}, {sliceId:String}, {status:String},
              JSONExtract({ranges:String}, 'Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64))'),
              JSONExtract({next:String}, 'Array(Tuple(topic String, partition UInt32, offset UInt64))'),
              {rowsIn:UInt64}, {inserted:UInt64}, {duplicates:UInt64}, {rejected:UInt64},
              parseDateTime64BestEffort({plannedAt:String}, 3, 'UTC'),
              parseDateTime64BestEffortOrNull({committedAt:String}, 3, 'UTC'),
              {durationMs:UInt32})`,
      {
        pipeline: s.pipeline,
        seq: s.seq,
        sliceId: s.sliceId,
        status: s.status,
        ranges: JSON.stringify(s.ranges.map((r) => ({ topic: r.topic, partition: r.partition, from_offset: r.fromOffset, to_offset: r.toOffset }))),
        next: JSON.stringify(s.nextOffsets),
        rowsIn: s.rowsIn,
        inserted: s.inserted,
        duplicates: s.duplicates,
        rejected: s.rejected,
        plannedAt: s.plannedAt,
        committedAt: s.committedAt ?? '',
        durationMs: Math.min(Math.round(s.durationMs), 4_294_967_295),
      },
      tokenInsert(`checkpoint:${s.sliceId}:${s.status}`),
    );
  }
}
