/**
 * One tick of a pipeline: resume an unfinished slice or plan the next one,
 * run the windowed anti-join insert, and record the checkpoint.
 * Write order: final rows and seen keys (one insert, two views) before the
 * 'committed' checkpoint; a crash anywhere re-runs the same slice with the
 * same deduplication token.
 */
import type { ClickHouseSettings } from '@clickhouse/client';
import type { PipelineConfig } from '../config/schema.ts';
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified } from '../clickhouse/sql.ts';
import { Checkpoints, type SliceRecord } from './checkpoints.ts';
import { objectNames } from './objects.ts';
import { planSlice, sliceId, type StagedHead } from './plan.ts';
import { rangesCondition, sliceCountSql, sliceInsertSql, stagedHeadsSql, type SliceRange } from './slice-sql.ts';

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

  private insertSettings(): ClickHouseSettings {
    // One block per slice, so a re-run with the same token is recognised whole.
    const big = String(Math.max(10_000_000, this.pipeline.schedule.maxSliceRows * 4));
    return {
      min_insert_block_size_rows: big,
      min_insert_block_size_bytes: '0',
      max_insert_block_size: big,
      deduplicate_blocks_in_dependent_materialized_views: 1,
    };
  }

  private async execute(planned: SliceRecord): Promise<SliceRecord> {
    const started = performance.now();
    await this.hooks.beforeInsert?.(planned);
    const ins = sliceInsertSql(this.pipeline, planned.sliceId, planned.ranges);
    const insert = this.db.command(ins.sql, ins.params, { ...this.insertSettings(), insert_deduplication_token: planned.sliceId });
    this.hooks.duringInsert?.(planned);
    await insert;
    await this.hooks.afterInsert?.(planned);
    const [rowsIn, inserted] = await Promise.all([this.countIn(planned.ranges), this.countKept(planned)]);
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

  private async countIn(ranges: SliceRange[]): Promise<number> {
    const q = sliceCountSql(this.pipeline, ranges);
    const rows = await this.db.rows<{ rows: string }>(q.sql, q.params);
    return Number(rows[0]?.rows ?? 0);
  }

  /** Rows this slice kept, read back from the seen keys (right after a resumed, deduplicated insert too). */
  private async countKept(s: SliceRecord): Promise<number> {
    const n = objectNames(this.pipeline);
    const key = this.pipeline.dedup.key.map(ident).join(', ');
    const cond = rangesCondition(s.ranges);
    const rows = await this.db.rows<{ kept: string }>(
      `SELECT count() AS kept FROM ${qualified(n.database, n.seen)}
       WHERE (${key}) IN (SELECT ${key} FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql})
         AND \`__slice\` = {slice:String}`,
      { ...cond.params, slice: s.sliceId },
    );
    return Number(rows[0]?.kept ?? 0);
  }
}
