/**
 * One slice of a pipeline: resume an unfinished slice or plan the next one,
 * run the windowed anti-join insert, and record the checkpoint.
 * Write order: final rows and seen keys (one insert, two views), then (with
 * dedup.index rocksdb) the seen-key index, before the 'committed' checkpoint; a crash anywhere re-runs the same slice with the
 * same deduplication token.
 */
import type { PipelineConfig } from '../config/schema.ts';
import type { ClickHouseFailure, Db } from '../clickhouse/client.ts';
import { WinnowError } from '../errors.ts';
import { Checkpoints, type NextOffset, type SliceRecord } from './checkpoints.ts';
import { advance, planSlice, sliceId } from './plan.ts';
import {
  clip,
  deadLetterRefused,
  dropRefusedSeenKeys,
  restoreRefusedIndexEntries,
  firstHalf,
  firstOffsets,
  isRowRefusal,
  offsetCount,
  refusalReason,
  rewind,
} from './rejections.ts';
import { oldestEvent } from './event-time.ts';
import { countKept, countStaged, dedupInsert, stagedHeads, type SliceRange } from './slice.ts';

export interface SliceOutcome {
  slice: SliceRecord;
  resumed: boolean;
  /** the final table refused some of its rows: recorded as split, its first half comes next */
  split?: { reason: string };
  /** its one message was refused and dead-lettered */
  refused?: { reason: string };
  /** the Kafka timestamp of its oldest message (unix ms), when asked for (ProcessorOptions.eventTimes) */
  oldestEventMs?: number | null;
}

export interface ProcessorOptions {
  /** read each committed slice's oldest Kafka timestamp beside its counts (for the latency metric) */
  eventTimes?: boolean;
}

/** Hooks the fault tests use to stop the controller at each step of a slice. */
export interface StepHooks {
  beforeInsert?: (s: SliceRecord) => Promise<void> | void;
  /** called once the insert request is on its way, before its answer */
  duringInsert?: (s: SliceRecord) => void;
  afterInsert?: (s: SliceRecord) => Promise<void> | void;
  afterCommit?: (s: SliceRecord) => Promise<void> | void;
  /** a replay job's chunk (1-based) is inserted and recorded, its progress not yet written */
  afterReplayChunk?: (chunk: number) => void;
}

/** Consecutive refused messages after which the final table, not the rows, is taken to be at fault. */
export const TABLE_WIDE_REFUSALS = 10;

export class Processor {
  readonly checkpoints: Checkpoints;
  /**
   * The search for refused messages: the offsets of the slice the final table
   * first refused, walked in range order (not re-planned across all partitions,
   * where a live stream would keep the search from ever reaching a refused
   * message in a later partition). A failure halves the next slice; a success
   * is followed by its sibling at the same size (binary search), two in a row
   * double it; a dead letter goes on with the rest at full size. The search
   * ends when the refused slice's offsets are all committed. Only speed depends
   * on it, so it lives in memory: a restarted daemon starts a new search.
   */
  private search: SliceRange[] | undefined;
  private cap: number | undefined;
  private successesInARow = 0;
  /** Messages dead-lettered since the final table last accepted a row (see refused()). */
  private refusedInARow = 0;
  constructor(
    private readonly db: Db,
    private readonly pipeline: PipelineConfig,
    private readonly hooks: StepHooks = {},
    private readonly options: ProcessorOptions = {},
  ) {
    this.checkpoints = new Checkpoints(db, pipeline.sink.database);
  }

  /** Process one slice; undefined when there is nothing new in staging. */
  async runOneSlice(): Promise<SliceOutcome | undefined> {
    const last = await this.checkpoints.last(this.pipeline.name);
    if (last?.status === 'planned') {
      return this.execute(last, true);
    }
    const maxRows = this.pipeline.schedule.maxSliceRows;
    const watermarks = last?.nextOffsets ?? [];
    let plan: { ranges: SliceRange[]; nextOffsets: NextOffset[] } | undefined;
    if (last?.status === 'split') {
      plan = { ranges: last.ranges, nextOffsets: advance(watermarks, last.ranges) };
    } else if (this.search) {
      const left = clip(this.search, watermarks);
      if (left.length > 0) {
        const ranges = firstOffsets(left, Math.min(this.cap ?? maxRows, maxRows));
        plan = { ranges, nextOffsets: advance(watermarks, ranges) };
      } else {
        this.search = undefined; // every offset of the refused slice is committed
        this.cap = undefined;
      }
    }
    if (!plan && last?.status !== 'split') {
      plan = planSlice(
        watermarks,
        await stagedHeads(this.db, this.pipeline, watermarks),
        Math.min(this.cap ?? maxRows, maxRows),
      );
    }
    if (!plan) return undefined;
    const seq = (last?.seq ?? 0) + 1;
    const planned: SliceRecord = {
      pipeline: this.pipeline.name,
      seq,
      sliceId: sliceId(this.pipeline.name, seq, plan.ranges),
      status: 'planned',
      ranges: plan.ranges,
      nextOffsets: plan.nextOffsets,
      rowsIn: 0,
      inserted: 0,
      duplicates: 0,
      rejected: 0,
      plannedAt: new Date().toISOString(),
      committedAt: null,
      durationMs: 0,
    };
    await this.checkpoints.record(planned);
    return this.execute(planned, false);
  }

  private async execute(planned: SliceRecord, resumed: boolean): Promise<SliceOutcome> {
    const started = performance.now();
    await this.hooks.beforeInsert?.(planned);
    const insert = dedupInsert(this.db, this.pipeline, planned.sliceId, planned.ranges);
    this.hooks.duringInsert?.(planned);
    try {
      await insert;
    } catch (err) {
      if (!isRowRefusal(err)) throw err;
      return this.refused(planned, resumed, err, started);
    }
    await this.hooks.afterInsert?.(planned);
    const [rowsIn, inserted, oldestEventMs] = await Promise.all([
      countStaged(this.db, this.pipeline, planned.ranges),
      countKept(this.db, this.pipeline, planned.sliceId, planned.ranges),
      this.options.eventTimes ? oldestEvent(this.db, this.pipeline, planned.ranges) : undefined,
    ]);
    const committed = await this.commit(
      planned,
      { rowsIn, inserted, duplicates: Math.max(0, rowsIn - inserted), rejected: 0 },
      started,
    );
    if (this.cap !== undefined && ++this.successesInARow >= 2) {
      this.cap = this.cap * 2 >= this.pipeline.schedule.maxSliceRows ? undefined : this.cap * 2;
    }
    if (inserted > 0) this.refusedInARow = 0;
    await this.hooks.afterCommit?.(committed);
    return { slice: committed, resumed, ...(oldestEventMs !== undefined ? { oldestEventMs } : {}) };
  }

  /**
   * The final table refused some of the slice's rows (rejections.ts). One
   * message: it goes to the dead letters and the slice commits without it.
   * More: the slice is recorded as split and its first half is the next slice.
   * Either way, the seen keys the refused attempt wrote go first (and the
   * index entries it wrote are set back).
   */
  private async refused(
    planned: SliceRecord,
    resumed: boolean,
    err: ClickHouseFailure,
    started: number,
  ): Promise<SliceOutcome> {
    const reason = refusalReason(err);
    await dropRefusedSeenKeys(this.db, this.pipeline, planned.sliceId, planned.ranges);
    await restoreRefusedIndexEntries(this.db, this.pipeline, planned.sliceId, planned.ranges);
    this.search ??= planned.ranges;
    if (offsetCount(planned.ranges) === 1) {
      if (this.refusedInARow >= TABLE_WIDE_REFUSALS) {
        // Not these rows: the table. Dead-lettering the whole stream one message at a time
        // would help no one; fail (and retry with back-off) until the table is fixed.
        throw new WinnowError(
          'CLICKHOUSE',
          `the final table refused the last ${this.refusedInARow} messages one by one and accepted none: it refuses every row (${reason})`,
          {
            hint: 'fix the table; then `winnow deadletters replay` brings back the refused messages',
            retryable: true,
            cause: err,
          },
        );
      }
      const rejected = await deadLetterRefused(this.db, this.pipeline, planned.ranges, reason);
      this.refusedInARow += rejected;
      this.cap = undefined; // isolated: the rest of the refused slice at full size
      const committed = await this.commit(planned, { rowsIn: rejected, inserted: 0, duplicates: 0, rejected }, started);
      return { slice: committed, resumed, refused: { reason } };
    }
    const half = firstHalf(planned.ranges);
    this.cap = Math.max(1, offsetCount(half));
    this.successesInARow = 0;
    const split: SliceRecord = {
      ...planned,
      status: 'split',
      ranges: half,
      nextOffsets: rewind(planned.nextOffsets, planned.ranges),
      committedAt: new Date().toISOString(),
      durationMs: performance.now() - started,
    };
    await this.checkpoints.record(split);
    return { slice: split, resumed, split: { reason } };
  }

  private async commit(
    planned: SliceRecord,
    counts: Pick<SliceRecord, 'rowsIn' | 'inserted' | 'duplicates' | 'rejected'>,
    started: number,
  ): Promise<SliceRecord> {
    const committed: SliceRecord = {
      ...planned,
      ...counts,
      status: 'committed',
      committedAt: new Date().toISOString(),
      durationMs: performance.now() - started,
    };
    await this.checkpoints.record(committed);
    return committed;
  }
}
