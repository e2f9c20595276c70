/**
 * The controller daemon: one node-cron task per pipeline; each tick drains
 * staged slices until none is left (or the tick's time budget is spent).
 * Stopping waits for the slice in flight, so SIGTERM never leaves one half-done
 * (a crash would not either: the checkpoint makes it resumable).
 */
import type { Admin } from 'kafkajs';
import cron, { type ScheduledTask } from 'node-cron';
import type { Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError, WinnowError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { formatRange } from '../kafka/partitions.ts';
import { Checker, type CheckerKafka, type CheckReport } from '../operations/checker.ts';
import { ReplayJobPoller, ReplayJobRunner } from '../operations/replay-jobs.ts';
import { Backoff } from './backoff.ts';
import { assertTokenDeduplication } from '../slicing/dedup-guard.ts';
import { Lease, type LeaseState } from '../slicing/lease.ts';
import type { RepairHooks } from '../operations/repair.ts';
import { Processor, type SliceOutcome, type StepHooks } from '../slicing/processor.ts';
import { cronFor } from './schedule.ts';

/** A full consistency check (every key, every offset) at least this often; the others are incremental. */
const FULL_CHECK_EVERY_MS = 24 * 3_600_000;

export interface PipelineHandle {
  pipeline: PipelineConfig;
  db: Db;
  /** Kafka access for the checker's offset comparison and for replays; absent: those parts are skipped */
  kafka?: CheckerKafka;
}

export class PipelineRunner {
  readonly processor: Processor;
  lastError: string | null = null;
  /** The lease as last claimed: whether this daemon holds the pipeline, until when, or who does. */
  leaseState: LeaseState = { held: false, heldUntil: 0, holder: null };
  private readonly lease: Lease;
  lastCheck: CheckReport | null = null;
  private inFlight: Promise<void> | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private lastSliceMs = 0;
  private deduplicationVerified = false;
  private readonly backoff = new Backoff();
  private checking: Promise<CheckReport> | undefined;
  private lastFullCheckAt: number | undefined;
  /** Replay jobs (operations/replay-jobs.ts): a step of the oldest open one between slices. */
  private readonly replays: ReplayJobPoller;
  private lastJobStepMs = 0;
  private admin: Promise<Admin | undefined> | undefined;

  constructor(
    readonly pipeline: PipelineConfig,
    readonly db: Db,
    private readonly logger: Logger,
    hooks: StepHooks = {},
    readonly kafka?: CheckerKafka,
    private readonly repairHooks: RepairHooks = {},
  ) {
    this.processor = new Processor(db, pipeline, hooks);
    this.lease = new Lease(db, pipeline.sink.database, pipeline.name);
    const runner = new ReplayJobRunner({
      db,
      pipeline,
      owner: this.lease.owner,
      admin: () => this.replayAdmin(),
      // A stopping daemon does not wait out a rewind: the next holder resumes the job.
      keepLease: async () => !this.stopped && (await this.holdsLease()),
      progress: (line) => this.logger.info('replay progress', { pipeline: pipeline.name, progress: line }),
      ...(hooks.afterReplayChunk ? { afterChunk: hooks.afterReplayChunk } : {}),
    });
    this.replays = new ReplayJobPoller(runner, (level, msg, fields) =>
      this.logger[level](msg, { pipeline: pipeline.name, ...fields }),
    );
  }

  /** Kafka admin for replays (timestamps, rewinds), connected on first use; undefined when unreachable. */
  private replayAdmin(): Promise<Admin | undefined> {
    const client = this.kafka?.client;
    if (!client) return Promise.resolve(undefined);
    this.admin ??= (async () => {
      const admin = client.admin();
      await admin.connect();
      return admin;
    })().catch(() => {
      this.admin = undefined;
      return undefined;
    });
    return this.admin;
  }

  /** Proves token deduplication works for this pipeline (dedup-guard.ts); throws DEDUP_UNSAFE when it cannot. */
  async verifyDeduplication(): Promise<void> {
    await assertTokenDeduplication(this.db, this.pipeline);
    this.deduplicationVerified = true;
  }

  /** True when this daemon may start a slice now: it holds the lease long enough to finish one. */
  private async mayProcess(): Promise<boolean> {
    const before = this.leaseState;
    this.leaseState = await this.lease.acquire();
    if (!this.leaseState.held) {
      if (before.held || before.holder !== this.leaseState.holder) {
        this.logger.warn('standing by: another daemon processes this pipeline', { pipeline: this.pipeline.name, holder: this.leaseState.holder });
      }
      return false;
    }
    if (!before.held) this.logger.info('processing: this daemon holds the pipeline', { pipeline: this.pipeline.name, owner: this.lease.owner });
    // Start a slice only if it can finish while the lease is held (a slice rarely takes a fifth of an epoch).
    const stepMs = Math.max(this.lastSliceMs, this.lastJobStepMs);
    return this.leaseState.heldUntil - Date.now() > Math.min(this.lease.epochMs / 2, Math.max(1_000, 2 * stepMs));
  }

  /** Runs fn when no slice, replay or check of this pipeline is running; they never overlap. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Whether this daemon currently holds the pipeline (so may repair or replay). */
  async holdsLease(): Promise<boolean> {
    this.leaseState = await this.lease.acquire();
    return this.leaseState.held;
  }

  /**
   * The consistency check with repairs, by the lease holder only. It reads
   * while slices go on (incremental: what changed since the last consistent
   * check); only its repairs and the counts take the exclusive lock, so a
   * slice never waits for more than those short writes. A full check runs
   * once a day (FULL_CHECK_EVERY_MS), or when asked.
   */
  async check(opts: { full?: boolean } = {}): Promise<CheckReport | null> {
    if (this.stopped || !(await this.holdsLease())) return null;
    if (this.checking) return this.checking;
    this.checking = this.runCheck(opts.full).finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async runCheck(wantFull = false): Promise<CheckReport> {
    this.lastFullCheckAt ??= await Checker.lastFull(this.db, this.pipeline);
    const full = wantFull || Date.now() - this.lastFullCheckAt > FULL_CHECK_EVERY_MS;
    const checker = new Checker(this.db, this.pipeline, this.kafka, this.repairHooks);
    // Repairs write only between slices and only while this daemon still holds the pipeline.
    const lock = <T>(fn: () => Promise<T>): Promise<T> =>
      this.exclusive(async () => {
        if (!(await this.holdsLease())) throw new WinnowError('CONFLICT', `pipeline ${this.pipeline.name}: lease lost during the consistency check`, { retryable: true });
        return fn();
      });
    const report = await checker.run({ repair: true, full, lock });
    if (report.scope.mode === 'full') this.lastFullCheckAt = Date.now();
    this.lastCheck = report;
    for (const r of report.doubled.repairs) {
      this.logger.warn('repaired a slice written twice', { pipeline: this.pipeline.name, repair: r.repairId, keys: r.keys, finalRemoved: r.finalRemoved, seenRemoved: r.seenRemoved, restored: r.restored, resumed: r.resumed });
    }
    const fields = {
      pipeline: this.pipeline.name,
      ok: report.ok,
      mode: report.scope.mode,
      slices: report.scope.slices,
      durationMs: report.durationMs,
      uniquenessViolations: report.uniqueness.violations,
      doubledGroups: report.doubled.groups,
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
  }

  /** Process slices until staging has nothing new, the budget is spent, or stop() is called. */
  drain(budgetMs: number): Promise<void> {
    if (this.inFlight) return this.inFlight; // a tick still running: this one joins it
    if (!this.backoff.ready(Date.now())) return Promise.resolve(); // failing: wait out the pause
    const deadline = Date.now() + budgetMs;
    this.inFlight = this.exclusive(async () => {
      try {
        // Not proven at start (ClickHouse was unreachable): prove it before the first write.
        if (!this.deduplicationVerified) await this.verifyDeduplication();
        while (!this.stopped && Date.now() < deadline && (await this.mayProcess())) {
          // Between slices, never inside one: a step of an open replay job (claim, plan, a chunk, finish).
          const started = performance.now();
          const stepped = await this.replays.step();
          if (stepped) {
            this.lastJobStepMs = performance.now() - started;
            if (this.stopped || !(await this.mayProcess())) break;
          }
          const outcome = await this.processor.runOneSlice();
          if (!outcome && !stepped) break;
          if (!outcome) continue;
          this.lastSliceMs = outcome.slice.durationMs;
          this.logSlice(outcome);
          // Progress: a failure after this one is a new streak, retried after the shortest pause.
          this.recovered();
        }
        this.lastError = null;
        this.recovered();
      } catch (err) {
        this.lastError = describeError(err);
        const report = this.backoff.failed(this.lastError, Date.now());
        if (report.kind === 'new') {
          // Retried either way; `retryable` is the error's own verdict on whether trying again can succeed.
          const retryable = err instanceof WinnowError && err.retryable;
          this.logger.error('slice failed; retrying with back-off', { pipeline: this.pipeline.name, error: this.lastError, retryable });
        } else if (report.kind === 'ongoing') {
          this.logger.error('slices still failing', { pipeline: this.pipeline.name, error: report.error, failures: report.failures, sinceS: Math.round(report.sinceMs / 1000) });
        }
      } finally {
        this.inFlight = undefined;
      }
    });
    return this.inFlight;
  }

  private recovered(): void {
    const ended = this.backoff.succeeded();
    if (ended > 0) this.logger.info('slices succeed again', { pipeline: this.pipeline.name, failuresBefore: ended });
  }

  private logSlice(o: SliceOutcome): void {
    const s = o.slice;
    const ranges = s.ranges.map(formatRange).join(' ');
    if (o.split) {
      // Halving towards the refused messages: one line each would flood the log.
      this.logger.debug('slice split: the final table refused some of its rows; next slice is its first half', { pipeline: this.pipeline.name, slice: s.sliceId, seq: s.seq, next: ranges, reason: o.split.reason });
      return;
    }
    if (o.refused) {
      this.logger.warn('message refused by the final table: sent to the dead letters', { pipeline: this.pipeline.name, slice: s.sliceId, seq: s.seq, message: ranges, reason: o.refused.reason });
      return;
    }
    this.logger.info('slice', {
      pipeline: this.pipeline.name,
      slice: s.sliceId,
      seq: s.seq,
      resumed: o.resumed,
      rowsIn: s.rowsIn,
      inserted: s.inserted,
      duplicates: s.duplicates,
      durationMs: Math.round(s.durationMs),
      ranges,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.checking?.catch(() => undefined);
    await this.lock;
    await (await this.admin)?.disconnect().catch(() => undefined);
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

  /**
   * Refuses to start where a token-reliant write could silently lose its
   * deduplication (throws DEDUP_UNSAFE). Other failures, such as ClickHouse not
   * answering yet, are logged: each runner proves it before its first slice.
   */
  async verifyDeduplication(): Promise<void> {
    for (const r of this.runners) {
      try {
        await r.verifyDeduplication();
      } catch (err) {
        if (err instanceof WinnowError && err.code === 'DEDUP_UNSAFE') throw err;
        this.logger.warn('insert deduplication not verified yet: will verify before the first slice', { pipeline: r.pipeline.name, error: describeError(err) });
      }
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
