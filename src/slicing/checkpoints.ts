/**
 * Slices as recorded in winnow_slices: a 'planned' row is written before the
 * dedup insert and a 'committed' row after it, so a controller that dies
 * between the two re-runs exactly the same slice (same ranges, same
 * deduplication token) instead of planning a different one.
 * Every statement on winnow_slices is built here (the checker, stats and
 * replays read the table through Checkpoints).
 */
import type { Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
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
  ranges: RangeRow[];
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
    ranges: r.ranges.map(fromRangeRow),
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

/** `log_comment` of the checkpoint statements a slice runs (reading the newest, writing one). */
export const CHECKPOINT_TAGS = {
  read: 'winnow:checkpoint_read',
  write: 'winnow:checkpoint_write',
} as const;

const RANGES_TYPE = 'Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64))';

/** Ranges as the slices and replays tables store them: JSON for JSONExtract(..., RANGES_TYPE). */
export function rangesJson(ranges: SliceRange[]): string {
  return JSON.stringify(
    ranges.map((r) => ({ topic: r.topic, partition: r.partition, from_offset: r.fromOffset, to_offset: r.toOffset })),
  );
}

/** A range as the slices and replays tables return it. */
export interface RangeRow {
  topic: string;
  partition: number;
  from_offset: string;
  to_offset: string;
}

export const fromRangeRow = (x: RangeRow): SliceRange => ({
  topic: x.topic,
  partition: x.partition,
  fromOffset: Number(x.from_offset),
  toOffset: Number(x.to_offset),
});

/** The statements on winnow_slices (of `database`), one builder each; values go as parameters. */
export const slicesSql = {
  /** The newest slice of a pipeline; a committed or split row wins over the planned row of the same seq. */
  last(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT * FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {pipeline:String} ORDER BY seq DESC, status DESC LIMIT 1`,
      params: { pipeline },
    };
  },

  recent(database: string, pipeline: string, limit: number): ParamSql {
    return {
      sql: `SELECT * FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {pipeline:String} ORDER BY seq DESC, status DESC LIMIT 1 BY seq LIMIT {limit:UInt32}`,
      params: { pipeline, limit },
    };
  },

  record(database: string, s: SliceRecord): ParamSql {
    return {
      sql: `INSERT INTO ${qualified(database, SLICES_TABLE)} (pipeline, seq, slice_id, status, ranges, next_offsets, rows_in, inserted, duplicates, rejected, planned_at, committed_at, duration_ms)
       VALUES ({pipeline:String}, {seq:UInt64}, {sliceId:String}, {status:String},
              JSONExtract({ranges:String}, '${RANGES_TYPE}'),
              JSONExtract({next:String}, 'Array(Tuple(topic String, partition UInt32, offset UInt64))'),
              {rowsIn:UInt64}, {inserted:UInt64}, {duplicates:UInt64}, {rejected:UInt64},
              parseDateTime64BestEffort({plannedAt:String}, 3, 'UTC'),
              parseDateTime64BestEffortOrNull({committedAt:String}, 3, 'UTC'),
              {durationMs:UInt32})`,
      params: {
        pipeline: s.pipeline,
        seq: s.seq,
        sliceId: s.sliceId,
        status: s.status,
        ranges: rangesJson(s.ranges),
        next: JSON.stringify(s.nextOffsets),
        rowsIn: s.rowsIn,
        inserted: s.inserted,
        duplicates: s.duplicates,
        rejected: s.rejected,
        plannedAt: s.plannedAt,
        committedAt: s.committedAt ?? '',
        durationMs: Math.min(Math.round(s.durationMs), 4_294_967_295),
      },
    };
  },

  /** ClickHouse's time now and the newest committed seq: where a consistency check starts. */
  committedHead(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT toString(now64(3)) AS now, max(seq) AS seq FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed'`,
      params: { p: pipeline },
    };
  },

  /** The watermarks of the newest committed slice. */
  committedNextOffsets(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT next_offsets AS next FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed' ORDER BY seq DESC LIMIT 1`,
      params: { p: pipeline },
    };
  },

  /** The ranges of each slice committed with seq in (fromSeq, toSeq]. */
  committedRanges(database: string, pipeline: string, fromSeq: number, toSeq: number): ParamSql {
    return {
      sql: `SELECT ranges FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed' AND seq > {from:UInt64} AND seq <= {to:UInt64}`,
      params: { p: pipeline, from: fromSeq, to: toSeq },
    };
  },

  /** What the committed slices counted, summed. */
  committedTotals(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT sum(inserted) AS inserted, sum(duplicates) AS duplicates, sum(rows_in) AS rows_in, sum(rejected) AS rejected
       FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed'`,
      params: { p: pipeline },
    };
  },

  /** Staged rows committed in the last 1 and 5 minutes. */
  committedRates(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT sumIf(rows_in, committed_at > now64(3) - INTERVAL 1 MINUTE) AS m1, sumIf(rows_in, committed_at > now64(3) - INTERVAL 5 MINUTE) AS m5
       FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed' AND committed_at > now64(3) - INTERVAL 5 MINUTE`,
      params: { p: pipeline },
    };
  },
};

export interface CommittedTotals {
  inserted: number;
  duplicates: number;
  rowsIn: number;
  rejected: number;
}

export class Checkpoints {
  constructor(
    private readonly db: Db,
    private readonly database: string,
  ) {}

  /** The newest slice of a pipeline; a committed or split row wins over the planned row of the same seq. */
  async last(pipeline: string): Promise<SliceRecord | undefined> {
    const q = slicesSql.last(this.database, pipeline);
    const rows = await this.db.rows<Row>(q.sql, q.params, { log_comment: CHECKPOINT_TAGS.read });
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  async recent(pipeline: string, limit: number): Promise<SliceRecord[]> {
    const q = slicesSql.recent(this.database, pipeline, limit);
    const rows = await this.db.rows<Row>(q.sql, q.params);
    return rows.map(fromRow);
  }

  /**
   * Writes one checkpoint row. Token-deduplicated per (slice, status): a daemon
   * that lost its lease while finishing a slice the next holder resumed, or a
   * retried write, cannot add a second 'committed' row (its counts would be summed twice).
   */
  async record(s: SliceRecord): Promise<void> {
    const q = slicesSql.record(this.database, s);
    await this.db.command(q.sql, q.params, {
      ...tokenInsert(`checkpoint:${s.sliceId}:${s.status}`),
      log_comment: CHECKPOINT_TAGS.write,
    });
  }

  /** ClickHouse's time now (as text) and the newest committed seq (0: none). */
  async committedHead(pipeline: string): Promise<{ now: string | undefined; seq: number }> {
    const q = slicesSql.committedHead(this.database, pipeline);
    const [row] = await this.db.rows<{ now: string; seq: string }>(q.sql, q.params);
    return { now: row?.now, seq: Number(row?.seq ?? 0) };
  }

  /** The watermarks of the newest committed slice (empty: none). */
  async committedNextOffsets(pipeline: string): Promise<NextOffset[]> {
    const q = slicesSql.committedNextOffsets(this.database, pipeline);
    const rows = await this.db.rows<{ next: { topic: string; partition: number; offset: string }[] }>(q.sql, q.params);
    return (rows[0]?.next ?? []).map((o) => ({ topic: o.topic, partition: o.partition, offset: Number(o.offset) }));
  }

  /** The ranges of each slice committed with seq in (fromSeq, toSeq], one list per slice. */
  async committedRanges(pipeline: string, fromSeq: number, toSeq: number): Promise<SliceRange[][]> {
    const q = slicesSql.committedRanges(this.database, pipeline, fromSeq, toSeq);
    const rows = await this.db.rows<{ ranges: RangeRow[] }>(q.sql, q.params);
    return rows.map((r) => r.ranges.map(fromRangeRow));
  }

  async committedTotals(pipeline: string): Promise<CommittedTotals> {
    const q = slicesSql.committedTotals(this.database, pipeline);
    const [row] = await this.db.rows<{ inserted: string; duplicates: string; rows_in: string; rejected: string }>(
      q.sql,
      q.params,
    );
    return {
      inserted: Number(row?.inserted ?? 0),
      duplicates: Number(row?.duplicates ?? 0),
      rowsIn: Number(row?.rows_in ?? 0),
      rejected: Number(row?.rejected ?? 0),
    };
  }

  /** Staged rows committed in the last minute and in the last 5 minutes. */
  async committedRates(pipeline: string): Promise<{ m1: number; m5: number }> {
    const q = slicesSql.committedRates(this.database, pipeline);
    const [row] = await this.db.rows<{ m1: string; m5: string }>(q.sql, q.params);
    return { m1: Number(row?.m1 ?? 0), m5: Number(row?.m5 ?? 0) };
  }
}
