/**
 * Why one file over 300 lines: a replay's plan, chunks, rewind and records are one resumable procedure (replay-jobs.ts drives it).
 *
 * Replay: re-process processed offsets through the windowed anti-join, from an
 * offset or a timestamp. A replay adds a row only for a key not represented
 * within the window (I5), so it is safe over data already processed. When
 * staging no longer holds the start of the range, the Kafka engine is rewound
 * (queue detached, the consumer group's offsets set, queue attached) and the
 * replay waits for the messages to be staged again.
 */
import { randomBytes } from 'node:crypto';
import type { Admin } from 'kafkajs';
import type { Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import { tokenInsert } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { formatRange } from '../kafka/partitions.ts';
import { Checkpoints, fromRangeRow, rangesJson, type RangeRow } from '../slicing/checkpoints.ts';
import { objectNames, REPLAYS_TABLE } from '../provisioning/objects.ts';
import { countKept, countStaged, dedupInsert, type SliceRange } from '../slicing/slice.ts';

export interface OffsetSpec {
  topic: string | undefined;
  partition: number;
  offset: number;
}

export type ReplayBound = { kind: 'offsets'; offsets: OffsetSpec[] } | { kind: 'timestamp'; ms: number };

export interface ReplayRequest {
  from: ReplayBound;
  to?: ReplayBound;
  reason?: string;
}

/** What a replay covers, fixed when it starts: its ranges, the chunk size they are cut by, the partitions rewound. */
export interface ReplayPlan {
  ranges: SliceRange[];
  chunkRows: number;
  rewound: { topic: string; partition: number; offset: number }[];
}

/**
 * A rewind under way: the ranges staging no longer held, and where staging
 * began before. Recorded before the queue is touched, so a replay resumed
 * after a crash rewinds those ranges again and waits for the same catch-up,
 * instead of taking a half re-staged range for a whole one.
 */
export interface RewindState {
  expired: SliceRange[];
  low: [string, number][];
}

export interface PlanOptions {
  /** the rewind an earlier attempt began: done again */
  rewind?: RewindState;
  /** called before a new rewind touches the queue */
  onRewind?: (s: RewindState) => Promise<void>;
}

/** A replay id, unique per request: it names the chunks' deduplication tokens. */
export function newReplayId(prefix = 'replay'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Offsets the ranges cover. */
export function offsetsIn(ranges: SliceRange[]): number {
  return ranges.reduce((s, r) => s + (r.toOffset - r.fromOffset + 1), 0);
}

export interface ReplayResult {
  replayId: string;
  ranges: SliceRange[];
  chunks: number;
  rowsIn: number;
  inserted: number;
  duplicates: number;
  rewound: { topic: string; partition: number; offset: number }[];
}

/** `2:100` (single-topic pipelines) or `topic/2:100`, comma-separated. */
export function parseOffsets(text: string): OffsetSpec[] {
  return text.split(',').map((part) => {
    const m = /^(?:(.+)\/)?(\d+):(\d+)$/.exec(part.trim());
    if (!m)
      throw new WinnowError(
        'USAGE',
        `offsets must look like PARTITION:OFFSET or TOPIC/PARTITION:OFFSET, got "${part}"`,
      );
    return { topic: m[1], partition: Number(m[2]), offset: Number(m[3]) };
  });
}

export function parseTimestamp(text: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms))
    throw new WinnowError(
      'USAGE',
      `timestamp must be ISO-8601 (2026-11-27T10:00:00Z) or milliseconds since the epoch, got "${text}"`,
    );
  return ms;
}

/** The topic an offset bound names (or the pipeline's only topic); USAGE when it is none of the pipeline's. */
export function resolveTopic(p: PipelineConfig, spec: OffsetSpec): string {
  if (spec.topic) {
    if (!p.source.topics.includes(spec.topic)) {
      throw new WinnowError('USAGE', `topic "${spec.topic}" is not a topic of pipeline ${p.name}`);
    }
    return spec.topic;
  }
  if (p.source.topics.length !== 1) {
    throw new WinnowError('USAGE', `pipeline ${p.name} reads several topics: say TOPIC/PARTITION:OFFSET`);
  }
  return p.source.topics[0] ?? '';
}

/** Checks a bound against the pipeline (its topics) before it is queued: USAGE when it cannot be planned. */
export function checkBound(p: PipelineConfig, b: ReplayBound): void {
  if (b.kind === 'offsets') for (const o of b.offsets) resolveTopic(p, o);
}

/** Parses a replay bound given as text: offsets (P:O or TOPIC/P:O lists) or a timestamp. */
export function replayBound(text: string, kind: 'offsets' | 'timestamp'): ReplayBound {
  return kind === 'offsets' ? { kind, offsets: parseOffsets(text) } : { kind, ms: parseTimestamp(text) };
}

/** The statements on winnow_replays (of `database`), one builder each; values go as parameters. */
export const replaysSql = {
  record(
    database: string,
    r: {
      pipeline: string;
      replayId: string;
      chunk: number;
      ranges: SliceRange[];
      rowsIn: number;
      inserted: number;
      reason: string;
    },
  ): ParamSql {
    return {
      sql: `INSERT INTO ${qualified(database, REPLAYS_TABLE)} (pipeline, replay_id, chunk, ranges, rows_in, inserted, duplicates, reason)
       VALUES ({p:String}, {id:String}, {c:UInt32},
              JSONExtract({r:String}, 'Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64))'),
              {n:UInt64}, {k:UInt64}, {d:UInt64}, {reason:String})`,
      params: {
        p: r.pipeline,
        id: r.replayId,
        c: r.chunk,
        r: rangesJson(r.ranges),
        n: r.rowsIn,
        k: r.inserted,
        d: r.rowsIn - r.inserted,
        reason: r.reason,
      },
    };
  },

  /** The ranges of each replay chunk recorded since `since` (ClickHouse time as text). */
  rangesSince(database: string, pipeline: string, since: string): ParamSql {
    return {
      sql: `SELECT ranges FROM ${qualified(database, REPLAYS_TABLE)} WHERE pipeline = {p:String} AND at >= toDateTime64({since:String}, 3, 'UTC')`,
      params: { p: pipeline, since },
    };
  },

  insertedTotal(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT sum(inserted) AS n FROM ${qualified(database, REPLAYS_TABLE)} WHERE pipeline = {p:String}`,
      params: { p: pipeline },
    };
  },
};

/** What a replay reads of staging (and the dead letters) and how it rewinds the Kafka engine; values go as parameters. */
export const replayStagingSql = {
  /** Per partition, the first staged offset whose Kafka timestamp is at or after `ms`. */
  firstAtOrAfter(p: PipelineConfig, ms: number): ParamSql {
    const n = objectNames(p);
    return {
      sql: `SELECT _topic AS topic, _partition AS partition, min(_offset) AS o FROM ${qualified(n.database, n.staging)}
       WHERE _timestamp_ms >= fromUnixTimestamp64Milli({ms:Int64}) GROUP BY topic, partition`,
      params: { ms },
    };
  },

  /** Lowest offset each partition still has in staging or the dead letters. */
  retained(p: PipelineConfig): ParamSql {
    const n = objectNames(p);
    return {
      sql: `SELECT topic, partition, min(low) AS low FROM (
         SELECT _topic AS topic, _partition AS partition, min(_offset) AS low FROM ${qualified(n.database, n.staging)} GROUP BY topic, partition
         UNION ALL
         SELECT _topic, _partition, min(_offset) FROM ${qualified(n.database, n.errors)} GROUP BY _topic, _partition
       ) GROUP BY topic, partition`,
      params: {},
    };
  },

  /** Highest staged offset of a partition within from..to. */
  highest(p: PipelineConfig, topic: string, partition: number, from: number, to: number): ParamSql {
    const n = objectNames(p);
    return {
      sql: `SELECT max(_offset) AS high FROM ${qualified(n.database, n.staging)} WHERE _topic = {t:String} AND _partition = {p:UInt32} AND _offset BETWEEN {f:UInt64} AND {e:UInt64}`,
      params: { t: topic, p: partition, f: from, e: to },
    };
  },

  /**
   * Stops (DETACH) or restarts (ATTACH) the pipeline's Kafka engine. Either is
   * a no-op when already done, so a replay resumed after a crash between the
   * two (the queue left detached) rewinds and attaches it again.
   */
  queue(p: PipelineConfig, action: 'DETACH' | 'ATTACH'): string {
    const n = objectNames(p);
    return `${action} TABLE ${action === 'DETACH' ? 'IF EXISTS' : 'IF NOT EXISTS'} ${qualified(n.database, n.queue)}`;
  },
};

/** The ranges of each replay chunk of the pipeline recorded since `since` (ClickHouse time as text), one list per chunk. */
export async function replayedRangesSince(db: Db, p: PipelineConfig, since: string): Promise<SliceRange[][]> {
  const q = replaysSql.rangesSince(p.sink.database, p.name, since);
  const rows = await db.rows<{ ranges: RangeRow[] }>(q.sql, q.params);
  return rows.map((r) => r.ranges.map(fromRangeRow));
}

/** Final rows the pipeline's replays inserted. */
export async function insertedByReplays(db: Db, p: PipelineConfig): Promise<number> {
  const q = replaysSql.insertedTotal(p.sink.database, p.name);
  return Number((await db.rows<{ n: string }>(q.sql, q.params))[0]?.n ?? 0);
}

type Progress = (line: string) => void;

export class Replayer {
  constructor(
    private readonly db: Db,
    private readonly p: PipelineConfig,
    private readonly admin: Admin | undefined,
    private readonly progress: Progress = () => undefined,
    /** asked while a rewind waits (it renews the lease); false: stop, the next holder resumes */
    private readonly stillHolding: () => Promise<boolean> = () => Promise.resolve(true),
  ) {}

  private async mustHold(): Promise<void> {
    if (!(await this.stillHolding())) {
      const why = 'the lease was lost while the replay waited; the next holder resumes it';
      throw new WinnowError('CONFLICT', `pipeline ${this.p.name}: ${why}`);
    }
  }

  private resolveTopic(spec: OffsetSpec): string {
    return resolveTopic(this.p, spec);
  }

  /** Offset per partition where the bound falls. */
  private async boundOffsets(
    b: ReplayBound,
    partitions: { topic: string; partition: number }[],
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (b.kind === 'offsets') {
      for (const o of b.offsets) out.set(`${this.resolveTopic(o)}/${o.partition}`, o.offset);
      return out;
    }
    if (this.admin) {
      for (const topic of this.p.source.topics) {
        for (const r of await this.admin.fetchTopicOffsetsByTimestamp(topic, b.ms))
          out.set(`${topic}/${r.partition}`, Number(r.offset));
      }
      return out;
    }
    // Without Kafka: the first staged offset at or after the timestamp.
    const q = replayStagingSql.firstAtOrAfter(this.p, b.ms);
    const rows = await this.db.rows<{ topic: string; partition: number; o: string }>(q.sql, q.params);
    for (const r of rows) out.set(`${r.topic}/${r.partition}`, Number(r.o));
    for (const q of partitions)
      if (!out.has(`${q.topic}/${q.partition}`)) out.set(`${q.topic}/${q.partition}`, Number.MAX_SAFE_INTEGER);
    return out;
  }

  /**
   * What a replay covers: per partition, the processed offsets within the
   * bounds (rewinding the Kafka engine where staging no longer holds them).
   * Fixed once planned: a resumed replay runs the same chunks under the same tokens.
   */
  async plan(req: ReplayRequest, opts: PlanOptions = {}): Promise<ReplayPlan> {
    const last = await new Checkpoints(this.db, this.p.sink.database).last(this.p.name);
    const processed = (last?.nextOffsets ?? []).filter((o) => o.offset > 0);
    const from = await this.boundOffsets(req.from, processed);
    const to = req.to ? await this.boundOffsets(req.to, processed) : undefined;
    const ranges: SliceRange[] = [];
    for (const o of processed) {
      const k = `${o.topic}/${o.partition}`;
      const f = from.get(k);
      if (f === undefined) continue;
      const end = Math.min(o.offset - 1, to?.get(k) ?? Number.MAX_SAFE_INTEGER);
      if (f <= end) ranges.push({ topic: o.topic, partition: o.partition, fromOffset: f, toOffset: end });
    }
    if (ranges.length === 0) {
      this.progress('nothing to replay: the bounds select no processed offsets');
      return { ranges, chunkRows: this.p.schedule.maxSliceRows, rewound: [] };
    }
    const rewound = await this.rewindWhereExpired(ranges, opts);
    return { ranges, chunkRows: this.p.schedule.maxSliceRows, rewound };
  }

  /**
   * Runs chunk `index` (0-based) of a planned replay and records it. Its token
   * (`<pipeline>-<replayId>-<index + 1>`) is its slice id, so a re-run, by this
   * process or by the next lease holder, inserts nothing twice (I5) and the
   * record in winnow_replays is written once.
   */
  async runChunk(
    replayId: string,
    index: number,
    ranges: SliceRange[],
    reason: string,
  ): Promise<{ rowsIn: number; inserted: number }> {
    const id = `${this.p.name}-${replayId}-${index + 1}`;
    await dedupInsert(this.db, this.p, id, ranges);
    const [n, kept] = await Promise.all([countStaged(this.db, this.p, ranges), countKept(this.db, this.p, id, ranges)]);
    const rec = replaysSql.record(this.p.sink.database, {
      pipeline: this.p.name,
      replayId,
      chunk: index + 1,
      ranges,
      rowsIn: n,
      inserted: kept,
      reason,
    });
    await this.db.command(rec.sql, rec.params, tokenInsert(`replay:${this.p.name}:${replayId}:${index + 1}`));
    return { rowsIn: n, inserted: kept };
  }

  /** Plans and runs a replay in this process, start to end. */
  async run(req: ReplayRequest, replayId = newReplayId()): Promise<ReplayResult> {
    const plan = await this.plan(req);
    const chunks = chunk(plan.ranges, plan.chunkRows);
    let rowsIn = 0;
    let inserted = 0;
    for (const [i, c] of chunks.entries()) {
      const r = await this.runChunk(replayId, i, c, req.reason ?? 'replay');
      rowsIn += r.rowsIn;
      inserted += r.inserted;
      this.progress(
        `chunk ${i + 1}/${chunks.length}: ${c.map(formatRange).join(' ')}: ${r.rowsIn} rows, ` +
          `${r.inserted} inserted, ${r.rowsIn - r.inserted} already represented`,
      );
    }
    const duplicates = rowsIn - inserted;
    const { ranges, rewound } = plan;
    return { replayId, ranges, chunks: chunks.length, rowsIn, inserted, duplicates, rewound };
  }

  /** Lowest offset each partition still has in staging or the dead letters. */
  private async retained(): Promise<Map<string, number>> {
    const q = replayStagingSql.retained(this.p);
    const rows = await this.db.rows<{ topic: string; partition: number; low: string }>(q.sql, q.params);
    return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.low)]));
  }

  private async rewindWhereExpired(
    ranges: SliceRange[],
    { rewind, onRewind }: PlanOptions,
  ): Promise<{ topic: string; partition: number; offset: number }[]> {
    const low = rewind ? new Map(rewind.low) : await this.retained();
    const isExpired = (r: SliceRange): boolean => r.fromOffset < (low.get(`${r.topic}/${r.partition}`) ?? 0);
    const expired = rewind ? rewind.expired : ranges.filter(isExpired);
    if (expired.length === 0) return [];
    if (!this.admin)
      throw new WinnowError(
        'KAFKA',
        'staging no longer holds the start of the range and Kafka is unreachable, so the queue cannot be rewound',
      );
    if (!rewind) await onRewind?.({ expired, low: [...low] });
    this.progress(`staging no longer holds ${expired.map(formatRange).join(' ')}: rewinding the Kafka engine`);
    await this.db.command(replayStagingSql.queue(this.p, 'DETACH'));
    try {
      await this.waitGroupEmpty();
      for (const topic of new Set(expired.map((r) => r.topic))) {
        const parts = expired
          .filter((r) => r.topic === topic)
          .map((r) => ({ partition: r.partition, offset: String(r.fromOffset) }));
        await this.admin.setOffsets({ groupId: this.p.source.consumerGroup, topic, partitions: parts });
      }
    } finally {
      await this.db.command(replayStagingSql.queue(this.p, 'ATTACH'));
    }
    // Wait until the re-consumed messages reached what staging still held.
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      const now = await this.retained();
      const pending = expired.filter((r) => (now.get(`${r.topic}/${r.partition}`) ?? Infinity) > r.fromOffset);
      const staged = await this.stagedCount(expired);
      this.progress(`re-consuming: ${staged} messages staged again`);
      if (pending.length === 0 && (await this.caughtUp(expired, low))) break;
      if (Date.now() > deadline)
        throw new WinnowError('NOT_READY', 'the rewound Kafka engine did not re-stage the range within 10 minutes');
      await new Promise((r) => setTimeout(r, 1000));
      await this.mustHold();
    }
    return expired.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.fromOffset }));
  }

  /** Offsets can be set only once the detached engine's consumers have left the group. */
  private async waitGroupEmpty(): Promise<void> {
    const admin = this.admin;
    if (!admin) return;
    const deadline = Date.now() + 90_000;
    for (;;) {
      const { groups } = await admin.describeGroups([this.p.source.consumerGroup]);
      const state = groups[0]?.state ?? 'Dead';
      if (state === 'Empty' || state === 'Dead') return;
      if (Date.now() > deadline)
        throw new WinnowError(
          'KAFKA',
          `consumer group ${this.p.source.consumerGroup} still has members (${state}) 90 s after the queue was detached`,
        );
      this.progress(`waiting for consumer group ${this.p.source.consumerGroup} to empty (${state})`);
      await new Promise((r) => setTimeout(r, 1000));
      await this.mustHold();
    }
  }

  private async stagedCount(ranges: SliceRange[]): Promise<number> {
    return countStaged(this.db, this.p, ranges);
  }

  /** Every partition re-staged up to the offset where staging used to begin. */
  private async caughtUp(ranges: SliceRange[], lowBefore: Map<string, number>): Promise<boolean> {
    for (const r of ranges) {
      const target = Math.min(r.toOffset, (lowBefore.get(`${r.topic}/${r.partition}`) ?? r.toOffset) - 1);
      const q = replayStagingSql.highest(this.p, r.topic, r.partition, r.fromOffset, target);
      const rows = await this.db.rows<{ high: string }>(q.sql, q.params);
      if (Number(rows[0]?.high ?? 0) < target) return false;
    }
    return true;
  }
}

/** Splits ranges so each chunk covers at most about maxRows offsets. */
export function chunk(ranges: SliceRange[], maxRows: number): SliceRange[][] {
  const out: SliceRange[][] = [];
  let current: SliceRange[] = [];
  let size = 0;
  for (const r of ranges) {
    let from = r.fromOffset;
    while (from <= r.toOffset) {
      const room = maxRows - size;
      const to = Math.min(r.toOffset, from + room - 1);
      current.push({ ...r, fromOffset: from, toOffset: to });
      size += to - from + 1;
      from = to + 1;
      if (size >= maxRows) {
        out.push(current);
        current = [];
        size = 0;
      }
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}
