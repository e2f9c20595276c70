/**
 * The controller daemon: one node-cron task per pipeline; each tick drains
 * staged slices until none is left (or the tick's time budget is spent).
 * Stopping waits for the slice in flight, so SIGTERM never leaves one half-done
 * (a crash would not either: the checkpoint makes it resumable).
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Checker, type CheckerKafka, type CheckReport } from './checker.ts';
import { assertTokenDeduplication } from './dedup-guard.ts';
import { Lease, type LeaseState } from './lease.ts';
import { Processor, type SliceOutcome, type StepHooks } from './processor.ts';
import { cronFor } from './schedule.ts';

export interface PipelineHandle {
  pipeline: PipelineConfig;
  db: Db;
  /** Kafka access for the checker's offset comparison and for replays; absent: those parts are skipped */
  kafka?: CheckerKafka;
}

export class PipelineRunner {
  readonly processor: Processor;
  lastError: string | null = null;
  lastErrorAt: number | null = null;
  slicesDone = 0;
  lease: LeaseState = { held: false, heldUntil: 0, holder: null };
  private readonly leases: Lease;
  lastCheck: CheckReport | null = null;
  private inFlight: Promise<void> | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private lastSliceMs = 0;
  private deduplicationVerified = false;

  constructor(
    readonly pipeline: PipelineConfig,
    readonly db: Db,
    private readonly logger: Logger,
    hooks: StepHooks = {},
    readonly kafka?: CheckerKafka,
  ) {
    this.processor = new Processor(db, pipeline, hooks);
    this.leases = new Lease(db, pipeline.sink.database, pipeline.name);
  }

  /** Proves token deduplication works for this pipeline (dedup-guard.ts); throws DEDUP_UNSAFE when it cannot. */
  async verifyDeduplication(): Promise<void> {
    await assertTokenDeduplication(this.db, this.pipeline);
    this.deduplicationVerified = true;
  }

  /** True when this daemon may start a slice now: it holds the lease long enough to finish one. */
  private async mayProcess(): Promise<boolean> {
    const before = this.lease;
    this.lease = await this.leases.acquire();
    if (!this.lease.held) {
      if (before.held || before.holder !== this.lease.holder) {
        this.logger.warn('standing by: another daemon processes this pipeline', { pipeline: this.pipeline.name, holder: this.lease.holder });
      }
      return false;
    }
    if (!before.held) this.logger.info('processing: this daemon holds the pipeline', { pipeline: this.pipeline.name, owner: this.leases.owner });
    // Start a slice only if it can finish while the lease is held (a slice rarely takes a fifth of an epoch).
    return this.lease.heldUntil - Date.now() > Math.min(this.leases.epochMs / 2, Math.max(1_000, 2 * this.lastSliceMs));
  }

  /** Runs fn when no slice, replay or check of this pipeline is running; they never overlap. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Whether this daemon currently holds the pipeline (so may repair or replay). */
  async holdsLease(): Promise<boolean> {
    this.lease = await this.leases.acquire();
    return this.lease.held;
  }

  /** The consistency check with repairs, between slices, by the lease holder only. */
  async check(): Promise<CheckReport | null> {
    if (this.stopped || !(await this.holdsLease())) return null;
    return this.exclusive(async () => {
      const report = await new Checker(this.db, this.pipeline, this.kafka).run({ repair: true });
      this.lastCheck = report;
      const fields = {
        pipeline: this.pipeline.name,
        ok: report.ok,
        durationMs: report.durationMs,
        uniquenessViolations: report.uniqueness.violations,
        missingKeys: report.completeness.missing,
        keptNotInFinal: report.seenVsFinal.keptNotInFinal,
        reinserted: report.seenVsFinal.reinsertedFromStaging,
        unrepairable: report.seenVsFinal.unrepairable,
        seenRestored: report.seenVsFinal.seenRestored,
        lostOffsets: report.offsets.partitions.reduce((s, p) => s + p.lost.length, 0),
      };
      if (report.ok) this.logger.info('consistency check', fields);
      else this.logger.error('consistency check', fields);
      return report;
    });
  }

  /** Process slices until staging has nothing new, the budget is spent, or stop() is called. */
  drain(budgetMs: number): Promise<void> {
    if (this.inFlight) return this.inFlight; // a tick still running: this one joins it
    const deadline = Date.now() + budgetMs;
    this.inFlight = this.exclusive(async () => {
      try {
        // Not proven at start (ClickHouse was unreachable): prove it before the first write.
        if (!this.deduplicationVerified) await this.verifyDeduplication();
        while (!this.stopped && Date.now() < deadline && (await this.mayProcess())) {
          const outcome = await this.processor.tick();
          if (!outcome) break;
          this.lastSliceMs = outcome.slice.durationMs;
          this.logSlice(outcome);
          this.slicesDone++;
        }
        this.lastError = null;
      } catch (err) {
        this.lastError = describeError(err);
        this.lastErrorAt = Date.now();
        const retryable = (err as { retryable?: boolean }).retryable ?? false;
        this.logger.error('slice failed', { pipeline: this.pipeline.name, error: this.lastError, retryable, willRetry: true });
      } finally {
        this.inFlight = undefined;
      }
    });
    return this.inFlight;
  }

  private logSlice(o: SliceOutcome): void {
    const s = o.slice;
    this.logger.info('slice', {
      pipeline: this.pipeline.name,
      slice: s.sliceId,
      seq: s.seq,
      resumed: o.resumed,
      rowsIn: s.rowsIn,
      inserted: s.inserted,
      duplicates: s.duplicates,
      durationMs: Math.round(s.durationMs),
      ranges: s.ranges.map((r) => `${r.topic}/${r.partition}:${r.fromOffset}-${r.toOffset}`).join(' '),
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.lock;
  }
}

export class Daemon {
  readonly runners: PipelineRunner[];
  private tasks: ScheduledTask[] = [];

  constructor(
    handles: PipelineHandle[],
    private readonly logger: Logger,
    hooks: StepHooks = {},
  ) {
    this.runners = handles.map((h) => new PipelineRunner(h.pipeline, h.db, logger, hooks, h.kafka));
  }

  start(): void {
    for (const r of this.runners) {
      const { expression, effectiveMs } = cronFor(r.pipeline.schedule.intervalMs);
      if (effectiveMs !== r.pipeline.schedule.intervalMs) {
        this.logger.info('tick interval rounded', { pipeline: r.pipeline.name, configuredMs: r.pipeline.schedule.intervalMs, effectiveMs });
      }
      const budget = Math.max(10_000, effectiveMs * 10);
      const task = cron.schedule(expression, () => r.drain(budget), { name: `winnow-${r.pipeline.name}`, noOverlap: true });
      this.tasks.push(task);
      const check = cronFor(r.pipeline.schedule.checkIntervalMs);
      const checkTask = cron.schedule(
        check.expression,
        () =>
          r.check().then(
            () => undefined,
            (err: unknown) => this.logger.error('consistency check failed', { pipeline: r.pipeline.name, error: describeError(err) }),
          ),
        { name: `winnow-check-${r.pipeline.name}`, noOverlap: true },
      );
      this.tasks.push(checkTask);
      // First tick now, not one interval from now.
      void r.drain(budget);
    }
  }

  runner(name: string): PipelineRunner | undefined {
    return this.runners.find((r) => r.pipeline.name === name);
  }

  async stop(): Promise<void> {
    for (const t of this.tasks) await t.stop();
    await Promise.all(this.runners.map((r) => r.stop()));
    for (const t of this.tasks) await t.destroy();
    this.tasks = [];
  }
}
