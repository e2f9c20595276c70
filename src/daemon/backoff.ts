/**
 * A pipeline that keeps failing (ClickHouse down, a grant revoked) retries
 * with growing, jittered pauses and says so once a state change, not once a
 * tick: the first failure of a streak is reported, the streak itself only as a
 * periodic summary ("still failing since T, N attempts"), and its end once.
 * Pure: the clock and the dice come in, what to log goes out.
 */

export interface BackoffOptions {
  firstMs: number;
  maxMs: number;
  /** how often a failure that goes on is summarised */
  summaryEveryMs: number;
  /** the share of each pause that is random, 0-1 (default 0.5: a pause is 50-100 % of the doubled delay) */
  jitter?: number;
  /** uniform in [0, 1); default Math.random */
  random?: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { firstMs: 1_000, maxMs: 30_000, summaryEveryMs: 60_000 };

export type FailureReport =
  | { kind: 'new'; error: string }
  | { kind: 'ongoing'; error: string; failures: number; sinceMs: number; firstAt: number }
  | { kind: 'quiet' };

export class Backoff {
  private count = 0;
  private first = 0;
  private retryAt = 0;
  private lastReportAt = 0;

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Failed attempts in a row (0: not failing). */
  get failures(): number {
    return this.count;
  }

  /** When the current streak of failures began (ms since the Unix epoch; 0 when not failing). */
  get firstAt(): number {
    return this.count > 0 ? this.first : 0;
  }

  /** When the next attempt may run. */
  get nextAttemptAt(): number {
    return this.retryAt;
  }

  /** Whether an attempt may run now. */
  ready(now: number): boolean {
    return now >= this.retryAt;
  }

  /** The next attempt may run at once (the streak goes on). */
  retryNow(): void {
    this.retryAt = 0;
  }

  /** Records a failure; says what, if anything, to log. */
  failed(error: string, now: number): FailureReport {
    this.count++;
    const delay = Math.min(this.opts.maxMs, this.opts.firstMs * 2 ** Math.min(this.count - 1, 20));
    const jitter = this.opts.jitter ?? 0.5;
    this.retryAt = now + Math.round(delay * (1 - jitter * (this.opts.random ?? Math.random)()));
    if (this.count === 1) {
      this.first = now;
      this.lastReportAt = now;
      return { kind: 'new', error };
    }
    if (now - this.lastReportAt >= this.opts.summaryEveryMs) {
      this.lastReportAt = now;
      return { kind: 'ongoing', error, failures: this.count, sinceMs: now - this.first, firstAt: this.first };
    }
    return { kind: 'quiet' };
  }

  /** Records a success; returns how many failures it ends (0: there were none). */
  succeeded(): number {
    const ended = this.count;
    this.count = 0;
    this.retryAt = 0;
    return ended;
  }
}
