/**
 * One tick of a pipeline: resume an unfinished slice or plan the next one,
 * run the windowed anti-join insert, and record the checkpoint.
 * Write order: final rows and seen keys (one insert, two views) before the
 * 'committed' checkpoint; a crash anywhere re-runs the same slice with the
 * same deduplication token.
 */
import type { PipelineConfig } from '../config/schema.ts';
import type { Db } from '../clickhouse/client.ts';
import { Checkpoints, type SliceRecord } from './checkpoints.ts';
import { countKept, countStaged, dedupInsert } from './dedup.ts';
import { planSlice, sliceId, type StagedHead } from './plan.ts';
import { stagedHeadsSql } from './slice-sql.ts';

export interface SliceOutcome {
  slice: SliceRecord;
  resumed: boolean;
}

/** Hooks the fault tests use to stop the controller at each step of a slice. */
export interface StepHooks {
  beforeInsert?: (s: SliceRecord) => Promise<void> | void;
  /** called once the insert request is on its way, before its answer */
  duringInsert?: (s: SliceRecord) => void;
  afterInsert?: (s: SliceRecord) => Promise<void> | void;
  afterCommit?: (s: SliceRecord) => Promise<void> | void;
}

export class Processor {
  readonly checkpoints: Checkpoints;
  constructor(
    private readonly db: Db,
    private readonly pipeline: PipelineConfig,
    private readonly hooks: StepHooks = {},
  ) {
    this.checkpoints = new Checkpoints(db, pipeline.sink.database);
  }

  /** Process one slice; undefined when there is nothing new in staging. */
  async tick(): Promise<SliceOutcome | undefined> {
    const last = await this.checkpoints.last(this.pipeline.name);
    if (last?.status === 'planned') {
      return { slice: await this.execute(last), resumed: true };
    }
    const heads = await this.stagedHeads(last?.nextOffsets ?? []);
    const plan = planSlice(last?.nextOffsets ?? [], heads, this.pipeline.schedule.maxSliceRows);
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
      plannedAt: new Date().toISOString(),
      committedAt: null,
      durationMs: 0,
    };
    await this.checkpoints.record(planned);
    return { slice: await this.execute(planned), resumed: false };
  }

  private async stagedHeads(next: SliceRecord['nextOffsets']): Promise<StagedHead[]> {
    const q = stagedHeadsSql(this.pipeline, next);
    const rows = await this.db.rows<{ topic: string; partition: number; low: string; high: string }>(q.sql, q.params);
    return rows.map((r) => ({ topic: r.topic, partition: r.partition, low: Number(r.low), high: Number(r.high) }));
  }

  private async execute(planned: SliceRecord): Promise<SliceRecord> {
    const started = performance.now();
    await this.hooks.beforeInsert?.(planned);
    const insert = dedupInsert(this.db, this.pipeline, planned.sliceId, planned.ranges);
    this.hooks.duringInsert?.(planned);
    await insert;
    await this.hooks.afterInsert?.(planned);
    const [rowsIn, inserted] = await Promise.all([
      countStaged(this.db, this.pipeline, planned.ranges),
      countKept(this.db, this.pipeline, planned.sliceId, planned.ranges),
    ]);
    const committed: SliceRecord = {
      ...planned,
      status: 'committed',
      rowsIn,
      inserted,
      duplicates: Math.max(0, rowsIn - inserted),
      committedAt: new Date().toISOString(),
      durationMs: performance.now() - started,
    };
    await this.checkpoints.record(committed);
    await this.hooks.afterCommit?.(committed);
    return committed;
  }
}
