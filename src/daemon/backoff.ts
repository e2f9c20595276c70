/**
 * A pipeline whose slices keep failing (ClickHouse down, a grant revoked)
 * retries with growing pauses and says so once, not once a tick: the first
 * failure is logged, the same failure again only as a periodic summary, and
 * the recovery once. Pure: the clock comes in, what to log goes out.
 */

export interface BackoffOptions {
  firstMs: number;
  maxMs: number;
  /** how often a failure that goes on is summarised */
  summaryEveryMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { firstMs: 1_000, maxMs: 30_000, summaryEveryMs: 60_000 };

export type FailureReport =
  | { kind: 'new'; error: string }
  | { kind: 'ongoing'; error: string; failures: number; sinceMs: number }
  | { kind: 'quiet' };

export class Backoff {
  private failures = 0;
  private firstAt = 0;
  private retryAt = 0;
  private lastError: string | null = null;
  private lastReportAt = 0;

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Whether an attempt may run now. */
  ready(now: number): boolean {
    return now >= this.retryAt;
  }

  /** Records a failure; says what, if anything, to log. */
  failed(error: string, now: number): FailureReport {
    this.failures++;
    if (this.failures === 1) this.firstAt = now;
    this.retryAt = now + Math.min(this.opts.maxMs, this.opts.firstMs * 2 ** Math.min(this.failures - 1, 20));
    if (error !== this.lastError) {
      this.lastError = error;
      this.lastReportAt = now;
      return { kind: 'new', error };
    }
    if (now - this.lastReportAt >= this.opts.summaryEveryMs) {
      this.lastReportAt = now;
      return { kind: 'ongoing', error, failures: this.failures, sinceMs: now - this.firstAt };
    }
    return { kind: 'quiet' };
  }

  /** Records a success; returns how many failures it ends (0: there were none). */
  succeeded(): number {
    const ended = this.failures;
    this.failures = 0;
    this.retryAt = 0;
    this.lastError = null;
    return ended;
  }
}
