/**
 * Why one file over 300 lines: the runner's states (processing, standby, failing), its loop, checks, jobs and stop share the lease and one lock.
 *
 * The runner of one pipeline (daemon.ts starts one per pipeline): a loop that holds the lease
 * and drains staged slices every schedule.interval (its own timer, since it
 * wakes early for lease renewals and drains without waiting while slices
 * remain), and a consistency check every schedule.checkInterval on a cron
 * schedule (node-cron, its messages routed into the JSON log).
 *
 * The lease follows health. A runner is `processing` (it holds the lease),
 * `standby` (another daemon holds it; this one's lease reads work) or
 * `failing` (its last attempt failed: a lease claim, or a slice). A holder that
 * cannot commit a slice for long (GIVE_UP: 3 failed attempts in a row and two
 * lease epochs, 30 s by default) stops renewing, says why in one line, and
 * releases the lease; it claims again only after one epoch, so a healthy
 * standby gets the pipeline first. Stopping finishes the slice in flight, then
 * releases the lease, so the standby or a restarted daemon takes over at once.
 * A crash leaves the lease to run out: at most one epoch.
 */
import type { Admin } from 'kafkajs';
import cron, { type ScheduledTask } from 'node-cron';
import type { Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError, errorClass, withoutRowValues, WinnowError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { Checker, type CheckerKafka, type CheckReport } from '../operations/checker.ts';
import { ReplayJobPoller, ReplayJobRunner } from '../operations/replay-jobs.ts';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { NO_OBSERVER, type DaemonObserver } from './observer.ts';
import { assertTokenDeduplication } from '../slicing/dedup-guard.ts';
import { Lease, leaseEpochMs, type LeaseState } from '../slicing/lease.ts';
import type { RepairHooks } from '../operations/repair.ts';
import { Processor, type StepHooks } from '../slicing/processor.ts';
import { cronFor } from './schedule.ts';
import { cronLogger } from './cron-logger.ts';
import { logSlice, observeSlice } from './slice-report.ts';

/** A full consistency check (every key, every offset) at least this often; the others are incremental. */
const FULL_CHECK_EVERY_MS = 24 * 3_600_000;
/** A standby reads the lease at least this often, so a released lease is taken within about a second. */
const STANDBY_POLL_MS = 1_000;

export interface PipelineHandle {
  pipeline: PipelineConfig;
  db: Db;
  /** Kafka access for the checker's offset comparison and for replays; absent: those parts are skipped */
  kafka?: CheckerKafka;
}

export type RunnerState = 'starting' | 'processing' | 'standby' | 'failing';

/** What /readyz says about a pipeline of this daemon. */
export interface RunnerHealth {
  state: RunnerState;
  /** when the runner entered this state (ISO time) */
  since: string;
  /** the lease holder as last read: this daemon's identity when processing */
  holder: string | null;
  /** until when the holder holds, as far as this daemon knows (ISO time) */
  holderUntil: string | null;
  /** attempts failed in a row */
  failures: number;
  failingSince: string | null;
  /** the last failure: its class and message, without row values */
  error: { class: string; message: string } | null;
  /** when this daemon last gave the lease up because it could not process */
  gaveUpAt: string | null;
}

export interface RunnerOptions {
  /** default leaseEpochMs() */
  epochMs?: number;
  /** when a holder that cannot commit gives the lease up: both bounds passed (default 3 attempts, two epochs) */
  giveUp?: { failures: number; afterMs: number };
  backoff?: BackoffOptions;
  /** told of slices, failures, the lease, checks and replays (the metrics); default none */
  observer?: DaemonObserver;
}

/** A lease claim or read failed (not a slice): a failure of its own kind. */
class LeaseFailure extends Error {
  constructor(readonly error: unknown) {
    super(describeError(error), { cause: error });
  }
}

export class PipelineRunner {
  readonly processor: Processor;
  /** the last failure in one line, without row values (null when healthy) */
  lastError: string | null = null;
  /** The lease as last claimed: whether this daemon holds the pipeline, until when, or who does. */
  leaseState: LeaseState = { held: false, heldUntil: 0, holder: null, holderUntil: 0 };
  lastCheck: CheckReport | null = null;
  private lease: Lease;
  private readonly epochMs: number;
  private readonly giveUp: { failures: number; afterMs: number };
  private readonly backoff: Backoff;
  private lock: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** set once the lease is released on stop: nothing may take the exclusive lock after it */
  private released = false;
  private lastSliceMs = 0;
  private deduplicationVerified = false;
  private checking: Promise<CheckReport> | undefined;
  private lastFullCheckAt: number | undefined;
  /** the failing streak: what failed ('slice' once any slice failed in it) and the last error */
  private failure: { kind: 'lease' | 'slice'; error: { class: string; message: string } } | null = null;
  /** slice attempts that failed since this daemon last took the lease */
  private failedWhileHeld = 0;
  /** after giving the lease up, no claim before this time */
  private yieldUntil = 0;
  private gaveUpAt = 0;
  private gaveUpInStreak = false;
  private leaseKnown = false;
  private state: RunnerState = 'starting';
  private stateSince = Date.now();
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private checkTask: ScheduledTask | undefined;
  /** Replay jobs (operations/replay-jobs.ts): a step of the oldest open one between slices; made on first use. */
  private replays: ReplayJobPoller | undefined;
  private lastJobStepMs = 0;
  private admin: Promise<Admin | undefined> | undefined;
  private readonly observer: DaemonObserver;
  private reportedHeld: boolean | undefined;

  constructor(
    readonly pipeline: PipelineConfig,
    readonly db: Db,
    private readonly logger: Logger,
    private readonly hooks: StepHooks = {},
    readonly kafka?: CheckerKafka,
    private readonly repairHooks: RepairHooks = {},
    options: RunnerOptions = {},
  ) {
    this.observer = options.observer ?? NO_OBSERVER;
    this.processor = new Processor(db, pipeline, hooks, { eventTimes: options.observer !== undefined });
    this.epochMs = options.epochMs ?? leaseEpochMs();
    this.giveUp = options.giveUp ?? { failures: 3, afterMs: 2 * this.epochMs };
    this.backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF);
    this.lease = new Lease(db, pipeline.sink.database, pipeline.name, { epochMs: this.epochMs });
    this.observer.track(pipeline.name);
    this.reportLease();
  }

  /** This daemon's identity in the lease (host, pid, API address, config file); before start only. */
  identify(owner: string): void {
    this.lease = new Lease(this.db, this.pipeline.sink.database, this.pipeline.name, { epochMs: this.epochMs, owner });
  }

  get owner(): string {
    return this.lease.owner;
  }

  /** The replay jobs' poller, made once the lease owner is known (identify() comes before the first drain). */
  private replayJobs(): ReplayJobPoller {
    this.replays ??= new ReplayJobPoller(
      new ReplayJobRunner({
        db: this.db,
        pipeline: this.pipeline,
        owner: this.owner,
        admin: () => this.replayAdmin(),
        // A stopping daemon does not wait out a rewind: the next holder resumes the job.
        keepLease: () => this.holdsLease(),
        progress: (line) => this.logger.info('replay progress', { pipeline: this.pipeline.name, progress: line }),
        ...(this.hooks.afterReplayChunk ? { afterChunk: this.hooks.afterReplayChunk } : {}),
      }),
      (level, msg, fields) => this.logger[level](msg, { pipeline: this.pipeline.name, ...fields }),
      undefined,
      (event) => this.observer.replay(this.pipeline.name, event),
    );
    return this.replays;
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

  // ---- health ---------------------------------------------------------------

  private setState(): void {
    const next: RunnerState = this.failure
      ? 'failing'
      : this.leaseState.held
        ? 'processing'
        : this.leaseKnown
          ? 'standby'
          : 'starting';
    if (next !== this.state) {
      this.state = next;
      this.stateSince = Date.now();
    }
    this.reportLease();
  }

  /** Tells the observer whether this daemon holds the lease, when that changed. */
  private reportLease(): void {
    const held = this.leaseState.held && this.leaseState.heldUntil > Date.now();
    if (held === this.reportedHeld) return;
    this.reportedHeld = held;
    this.observer.leaseHeld(this.pipeline.name, held);
  }

  health(): RunnerHealth {
    const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);
    return {
      state: this.state,
      since: new Date(this.stateSince).toISOString(),
      holder: this.leaseState.holder,
      holderUntil: iso(this.leaseState.holderUntil),
      failures: this.backoff.failures,
      failingSince: iso(this.backoff.firstAt),
      error: this.failure?.error ?? null,
      gaveUpAt: iso(this.gaveUpAt),
    };
  }

  /** One failed attempt: logged when a streak begins, then summarised once a minute. */
  private failed(kind: 'lease' | 'slice', err: unknown): void {
    if (kind === 'slice') this.observer.sliceFailed(this.pipeline.name);
    const error = { class: errorClass(err), message: withoutRowValues(describeError(err)) };
    this.lastError = error.message;
    // Lease claims failing, then slices too: a new state (only a slice ends it), said once.
    const escalates = kind === 'slice' && this.failure?.kind === 'lease';
    this.failure = { kind: kind === 'slice' || this.failure?.kind === 'slice' ? 'slice' : 'lease', error };
    if (kind === 'slice') this.failedWhileHeld++;
    const report = this.backoff.failed(error.message, Date.now());
    const fields = { pipeline: this.pipeline.name, error: error.message, errorClass: error.class };
    if (report.kind === 'new' || escalates) {
      // Retried either way; `retryable` is the error's own verdict on whether trying again can succeed.
      const retryable = err instanceof WinnowError && err.retryable;
      this.logger.error(`${kind === 'lease' ? 'lease claim failed' : 'slice failed'}; retrying with back-off`, {
        ...fields,
        retryable,
      });
    } else if (report.kind === 'ongoing') {
      const since = new Date(report.firstAt).toISOString();
      this.logger.error(`still failing since ${since}, ${report.failures} attempts`, {
        ...fields,
        since,
        attempts: report.failures,
        sinceS: Math.round(report.sinceMs / 1000),
      });
    }
    this.setState();
  }

  /** A successful attempt of `kind` ends a streak of that kind; a lease answer does not end failed slices. */
  private succeeded(kind: 'lease' | 'slice'): void {
    if (!this.failure || (kind === 'lease' && this.failure.kind === 'slice')) return;
    const was = this.failure.kind;
    const failuresBefore = this.backoff.succeeded();
    this.failure = null;
    this.lastError = null;
    this.gaveUpInStreak = false;
    this.logger.info(was === 'slice' ? 'slices succeed again' : 'lease claims succeed again', {
      pipeline: this.pipeline.name,
      failuresBefore,
    });
    this.setState();
  }

  // ---- the lease ---------------------------------------------------------------

  /** Claims or renews the lease and logs a change of holder; throws LeaseFailure. */
  private async claim(): Promise<LeaseState> {
    const before = this.leaseState;
    let s: LeaseState;
    try {
      s = await this.lease.acquire();
    } catch (err) {
      throw new LeaseFailure(err);
    }
    this.leaseState = s;
    this.leaseKnown = true;
    if (!s.held) {
      if (before.held || before.holder !== s.holder) {
        this.logger.warn('standing by: another daemon processes this pipeline', {
          pipeline: this.pipeline.name,
          holder: s.holder,
          ...(s.holderUntil > 0 ? { holderUntil: new Date(s.holderUntil).toISOString() } : {}),
        });
      }
    } else if (!before.held) {
      this.failedWhileHeld = 0;
      this.backoff.retryNow(); // a new holding starts with an attempt
      // Taking it back to try again after giving it up is part of the failure already reported.
      this.logger[this.gaveUpInStreak ? 'debug' : 'info']('processing: this daemon holds the pipeline', {
        pipeline: this.pipeline.name,
        owner: this.lease.owner,
      });
    }
    this.succeeded('lease');
    this.setState();
    return s;
  }

  /** True when this daemon may start a slice now: it holds the lease long enough to finish one. */
  private async mayProcess(): Promise<boolean> {
    const s = await this.claim();
    if (!s.held) return false;
    // Start a slice only if it can finish while the lease is held (a slice rarely takes a tenth of an epoch).
    const stepMs = Math.max(this.lastSliceMs, this.lastJobStepMs);
    return s.heldUntil - Date.now() > Math.min(this.lease.maxSliceMs, Math.max(1_000, 2 * stepMs));
  }

  /** Whether this daemon currently holds the pipeline (so may repair or replay). */
  async holdsLease(): Promise<boolean> {
    if (this.stopped || Date.now() < this.yieldUntil) return false;
    try {
      return (await this.claim()).held;
    } catch (err) {
      throw err instanceof LeaseFailure ? err.error : err;
    }
  }

  /** The holder has failed long enough (GIVE_UP bounds), and at least once since it took the lease. */
  private shouldGiveUp(now: number): boolean {
    return (
      this.leaseState.held &&
      this.failure?.kind === 'slice' &&
      this.failedWhileHeld > 0 &&
      this.backoff.failures >= this.giveUp.failures &&
      now - this.backoff.firstAt >= this.giveUp.afterMs
    );
  }

  /**
   * Stops renewing and releases the lease, under the exclusive lock (no slice,
   * repair or replay of this daemon runs, so none writes after the release).
   * Claims again one epoch later: a healthy standby takes the pipeline first.
   */
  private async giveUpLease(): Promise<void> {
    const failingS = Math.round((Date.now() - this.backoff.firstAt) / 1000);
    const why = `${this.backoff.failures} attempts failed in ${failingS} s: ${this.failure?.error.message ?? '?'}`;
    let released = 0;
    let releaseError: string | undefined;
    await this.exclusive(async () => {
      // First no more claims (holdsLease, the loop), then the release.
      this.gaveUpAt = Date.now();
      this.yieldUntil = this.gaveUpAt + this.epochMs;
      this.leaseState = { held: false, heldUntil: 0, holder: null, holderUntil: 0 };
      released = await this.lease.release(`gave up: ${why}`).catch((err: unknown) => {
        releaseError = describeError(err);
        return 0;
      });
    });
    const fields = {
      pipeline: this.pipeline.name,
      failures: this.backoff.failures,
      failingS,
      error: this.failure?.error.message,
      errorClass: this.failure?.error.class,
      lease: releaseError
        ? `not released (${releaseError}): it runs out within one epoch`
        : `released (${released} terms)`,
      claimsAgainAt: new Date(this.yieldUntil).toISOString(),
    };
    if (!this.gaveUpInStreak)
      this.logger.warn(`giving up the lease: this daemon cannot process the pipeline (${why})`, fields);
    else this.logger.debug('giving up the lease again', fields);
    this.gaveUpInStreak = true;
    this.setState();
  }

  // ---- exclusive work ---------------------------------------------------------------

  /** Runs fn when no slice, replay or check of this pipeline is running; they never overlap. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(() => {
      if (this.released)
        throw new WinnowError(
          'CONFLICT',
          `pipeline ${this.pipeline.name}: this daemon is stopping and has released the lease`,
        );
      return fn();
    });
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** exclusive, and only while this daemon holds the lease (replays, repairs); CONFLICT otherwise. */
  underLease<T>(fn: () => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      if (!(await this.holdsLease())) {
        throw new WinnowError(
          'CONFLICT',
          `pipeline ${this.pipeline.name}: this daemon does not hold the lease ` +
            `(holder: ${this.leaseState.holder ?? 'none'})`,
          { retryable: true },
        );
      }
      return fn();
    });
  }

  /**
   * The consistency check with repairs, by the lease holder only. It reads
   * while slices go on (incremental: what changed since the last consistent
   * check); only its repairs and the counts take the exclusive lock, so a
   * slice never waits for more than those short writes. A full check runs
   * once a day (FULL_CHECK_EVERY_MS), or when asked. Not while failing.
   */
  async check(opts: { full?: boolean } = {}): Promise<CheckReport | null> {
    if (this.stopped || this.failure || !(await this.holdsLease())) return null;
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
    const report = await checker.run({ repair: true, full, lock: (fn) => this.underLease(fn) });
    if (report.scope.mode === 'full') this.lastFullCheckAt = Date.now();
    this.lastCheck = report;
    this.observer.checked(this.pipeline.name, report.ok, Date.now());
    for (const r of report.doubled.repairs) {
      this.logger.warn('repaired a slice written twice', {
        pipeline: this.pipeline.name,
        repair: r.repairId,
        keys: r.keys,
        finalRemoved: r.finalRemoved,
        seenRemoved: r.seenRemoved,
        restored: r.restored,
        resumed: r.resumed,
      });
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

  // ---- the loop ---------------------------------------------------------------

  /**
   * One tick: hold the lease (renew, or claim when free), give it up when this
   * daemon has failed too long, else drain slices unless a retry pause lasts.
   * Returns true when slices are left (the budget ran out): tick again at once.
   */
  async tick(budgetMs: number): Promise<boolean> {
    const now = Date.now();
    if (this.stopped || now < this.yieldUntil) return false;
    const holding = this.leaseState.held && this.leaseState.heldUntil > now;
    // Failing and not holding: wait out the pause before claiming again. A holder renews meanwhile.
    if (!holding && !this.backoff.ready(now)) return false;
    try {
      if (!(await this.claim()).held) return false;
    } catch (err) {
      this.failed('lease', err instanceof LeaseFailure ? err.error : err);
      return false;
    }
    if (this.shouldGiveUp(Date.now())) {
      await this.giveUpLease();
      return false;
    }
    if (!this.backoff.ready(Date.now())) return false;
    return this.drain(budgetMs);
  }

  /** Process slices until staging has nothing new, the budget is spent, or the runner stops. */
  private drain(budgetMs: number): Promise<boolean> {
    const deadline = Date.now() + budgetMs;
    return this.exclusive(async () => {
      try {
        // Not proven at start (ClickHouse was unreachable): prove it before the first write.
        if (!this.deduplicationVerified) await this.verifyDeduplication();
        for (;;) {
          if (this.stopped) return false;
          if (Date.now() >= deadline) return true;
          if (!(await this.mayProcess())) return false; // lost the lease, or too little of it left to finish a slice
          // Between slices, never inside one: a step of an open replay job (claim, plan, a chunk, finish).
          const started = performance.now();
          const stepped = await this.replayJobs().step();
          if (stepped) {
            this.lastJobStepMs = performance.now() - started;
            if (this.stopped || !(await this.mayProcess())) return false;
          }
          const outcome = await this.processor.runOneSlice();
          if (!outcome && stepped) continue;
          if (!outcome) break;
          this.lastSliceMs = outcome.slice.durationMs;
          logSlice(this.logger, this.pipeline.name, outcome);
          observeSlice(this.observer, this.pipeline.name, outcome);
          // Progress: a failure after this one is a new streak, retried after the shortest pause.
          this.succeeded('slice');
        }
        this.succeeded('slice');
        this.observer.progressed(this.pipeline.name, Date.now());
      } catch (err) {
        if (err instanceof LeaseFailure) this.failed('lease', err.error);
        else this.failed('slice', err);
      }
      return false;
    });
  }

  /** How long to sleep after a tick that began at t0. */
  private delay(t0: number, intervalMs: number): number {
    const now = Date.now();
    let at = t0 + intervalMs;
    if (this.leaseState.held) {
      const due = this.lease.renewalDueAt(now); // the next term's claim
      at = Math.min(at, due > now ? due + 20 : now + 250);
    } else {
      at = Math.min(at, now + STANDBY_POLL_MS);
      // A dead holder's lease runs out at holderUntil: claim right then.
      if (this.leaseState.holderUntil > now) at = Math.min(at, this.leaseState.holderUntil + 10);
      if (this.backoff.failures > 0) at = Math.max(at, this.backoff.nextAttemptAt);
    }
    if (this.yieldUntil > now) at = Math.max(at, this.yieldUntil);
    return Math.max(0, at - now);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Starts the slice loop and the consistency checks. */
  start(owner?: string): void {
    if (owner) this.identify(owner);
    const { effectiveMs } = cronFor(this.pipeline.schedule.intervalMs);
    if (effectiveMs !== this.pipeline.schedule.intervalMs) {
      this.logger.info('tick interval rounded', {
        pipeline: this.pipeline.name,
        configuredMs: this.pipeline.schedule.intervalMs,
        effectiveMs,
      });
    }
    const budget = Math.max(10_000, effectiveMs * 10);
    this.loopDone = (async () => {
      while (!this.stopped) {
        const t0 = Date.now();
        let more = false;
        try {
          more = await this.tick(budget);
        } catch (err) {
          this.logger.error('daemon loop failed; going on', {
            pipeline: this.pipeline.name,
            error: describeError(err),
          });
        }
        if (this.stopped) break;
        await this.sleep(more ? 0 : this.delay(t0, effectiveMs));
      }
    })();
    // The consistency check runs on a cron schedule; node-cron skips a run
    // while the previous one is still going (noOverlap) and reports through
    // winnow's JSON logger, never on the console.
    this.checkTask = cron.schedule(
      cronFor(this.pipeline.schedule.checkIntervalMs).expression,
      async () => {
        try {
          await this.check();
        } catch (err) {
          this.logger.error('consistency check failed', {
            pipeline: this.pipeline.name,
            error: withoutRowValues(describeError(err)),
          });
        }
      },
      { name: `check:${this.pipeline.name}`, noOverlap: true, logger: cronLogger(this.logger, this.pipeline.name) },
    );
  }

  /**
   * Finishes the slice in flight, the check and any replay, then releases the
   * lease: the standby or a restarted daemon takes over without waiting for it
   * to run out.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.checkTask?.destroy();
    this.wake?.();
    await this.loopDone;
    await this.checking?.catch(() => undefined);
    for (let seen: Promise<unknown> | undefined; seen !== this.lock;) {
      seen = this.lock;
      await seen;
    }
    // Nothing of this daemon writes any more, and nothing may start: now the lease can go.
    this.released = true;
    try {
      const terms = await this.lease.release('stopped');
      if (terms > 0) this.logger.info('lease released', { pipeline: this.pipeline.name, terms });
    } catch (err) {
      this.logger.warn('could not release the lease: another daemon takes over when it runs out (within one epoch)', {
        pipeline: this.pipeline.name,
        error: describeError(err),
      });
    }
    this.leaseState = { held: false, heldUntil: 0, holder: null, holderUntil: 0 };
    this.reportLease();
    await (await this.admin)?.disconnect().catch(() => undefined);
  }
}
