/**
 * The metrics of one `winnow run`, through prom-client, in a registry of its
 * own (never prom-client's global one: two apps in one process, as in tests,
 * keep their numbers apart). Counters and histograms are the daemon's, counted
 * as slices commit (DaemonObserver), so they only rise for the life of the
 * process and survive `migrate down` or an emptied table; gauges that describe
 * the tables and Kafka are set on each scrape (prometheus.ts). README "Metrics"
 * lists every series.
 */
import { readFileSync } from 'node:fs';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { CommittedSlice, DaemonObserver, ReplayEvent } from '../daemon/observer.ts';

const P = ['pipeline'] as const;
type PipelineLabel = (typeof P)[number];

/** winnow's version, from the package.json above this file (src/ or a compiled dist/ alike). */
export function winnowVersion(): string {
  for (let dir = new URL('.', import.meta.url); ;) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'winnow' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    const up = new URL('..', dir);
    if (up.href === dir.href) return 'unknown';
    dir = up;
  }
}

export interface MetricsOptions {
  /** default: package.json's */
  version?: string;
  /** prom-client's process and Node.js metrics (process_*, nodejs_*); default true */
  processMetrics?: boolean;
}

export class WinnowMetrics implements DaemonObserver {
  readonly registry = new Registry();

  readonly up: Gauge;
  readonly statsError: Gauge<PipelineLabel>;
  readonly pendingRows: Gauge<PipelineLabel>;
  readonly stagingRows: Gauge<PipelineLabel>;
  readonly deadLetterRows: Gauge<PipelineLabel>;
  readonly lagMessages: Gauge<'pipeline' | 'topic' | 'partition'>;
  readonly lagSeconds: Gauge<'pipeline' | 'topic' | 'partition'>;

  private readonly consumed: Counter<PipelineLabel>;
  private readonly inserted: Counter<PipelineLabel>;
  private readonly duplicates: Counter<PipelineLabel>;
  private readonly deadLetters: Counter<'pipeline' | 'reason'>;
  private readonly slicesCommitted: Counter<PipelineLabel>;
  private readonly slicesFailed: Counter<PipelineLabel>;
  private readonly replays: Counter<'pipeline' | 'event'>;
  private readonly checks: Counter<'pipeline' | 'result'>;
  private readonly sliceDuration: Histogram<PipelineLabel>;
  private readonly sliceRows: Histogram<PipelineLabel>;
  private readonly latency: Histogram<PipelineLabel>;
  private readonly lastSuccess: Gauge<PipelineLabel>;
  private readonly leaseHeldGauge: Gauge<PipelineLabel>;
  private readonly consistencyOk: Gauge<PipelineLabel>;
  private readonly consistencyAt: Gauge<PipelineLabel>;
  /** dead-letter table rows of invalid messages at the previous scrape, per pipeline */
  private readonly invalidSeen = new Map<string, number>();

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Counter<L>({ name, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
      new Gauge<L>({ name, help, labelNames, registers });

    new Gauge({
      name: 'winnow_build_info',
      help: 'Always 1; the labels say which winnow and which Node.js run.',
      labelNames: ['version', 'node_version', 'platform', 'arch'],
      registers,
    }).set(
      {
        version: opts.version ?? winnowVersion(),
        node_version: process.version,
        platform: process.platform,
        arch: process.arch,
      },
      1,
    );
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.consumed = counter(
      'winnow_events_consumed_total',
      'Staged messages taken by the slices this process committed (a refused message counts too).',
      P,
    );
    this.inserted = counter(
      'winnow_events_inserted_total',
      'Rows the slices this process committed inserted into the final table (first occurrences).',
      P,
    );
    this.duplicates = counter(
      'winnow_duplicates_dropped_total',
      'Messages the slices this process committed dropped as duplicates within the window.',
      P,
    );
    this.deadLetters = counter(
      'winnow_dead_letters_total',
      'Messages sent to the dead letters. reason="refused": refused by the final table, counted as slices commit; ' +
        'reason="invalid": unparseable or failing a column rule, counted by the rise of the dead-letter table between ' +
        'scrapes while this process holds the lease.',
      ['pipeline', 'reason'],
    );
    this.slicesCommitted = counter('winnow_slices_committed_total', 'Slices this process committed.', P);
    this.slicesFailed = counter(
      'winnow_slices_failed_total',
      'Slice attempts of this process that failed (each is retried with back-off).',
      P,
    );
    this.replays = counter(
      'winnow_replay_jobs_total',
      'Replay jobs run by this process: event="started" (claimed or resumed), "done", "failed".',
      ['pipeline', 'event'],
    );
    this.checks = counter(
      'winnow_consistency_checks_total',
      'Consistency checks this process ran, by result ("ok" or "failed").',
      ['pipeline', 'result'],
    );
    this.sliceDuration = new Histogram({
      name: 'winnow_slice_duration_seconds',
      help: 'How long a committed slice took, from its insert to its committed checkpoint, seconds.',
      labelNames: P,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.sliceRows = new Histogram({
      name: 'winnow_slice_rows',
      help: 'Staged messages per committed slice.',
      labelNames: P,
      buckets: [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000],
      registers,
    });
    this.latency = new Histogram({
      name: 'winnow_end_to_end_latency_seconds',
      help:
        'One observation per committed slice: seconds from the Kafka timestamp of its oldest message ' +
        '(as the producer or broker set it) to its committed checkpoint, the worst end-to-end latency in the slice.',
      labelNames: P,
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.lastSuccess = gauge(
      'winnow_last_success_timestamp_seconds',
      'Unix time this process last committed a slice or found staging drained (a lease holder that keeps up).',
      P,
    );
    this.leaseHeldGauge = gauge(
      'winnow_lease_held',
      "1 while this process holds the pipeline's lease (it writes), 0 otherwise (standby, failing or stopped).",
      P,
    );
    this.consistencyOk = gauge(
      'winnow_consistency_ok',
      "Result of this process's last consistency check: 1 ok, 0 failed (absent before its first check).",
      P,
    );
    this.consistencyAt = gauge(
      'winnow_consistency_check_timestamp_seconds',
      "Unix time of this process's last consistency check.",
      P,
    );

    this.up = new Gauge({
      name: 'winnow_up',
      help: 'Whether winnow is ready to do its work (1) or not (0), as /readyz reports.',
      registers,
    });
    this.statsError = gauge(
      'winnow_stats_error',
      'Whether reading the statistics of a pipeline failed on this scrape (1) or not (0).',
      P,
    );
    this.pendingRows = gauge(
      'winnow_pending_rows',
      'Rows staged in ClickHouse but not yet in a committed slice (read on scrape).',
      P,
    );
    this.stagingRows = gauge(
      'winnow_staging_rows',
      'Distinct messages in the staging table now (read on scrape; falls as its TTL removes rows).',
      P,
    );
    this.deadLetterRows = gauge('winnow_dead_letter_rows', 'Rows in the dead-letter table now (read on scrape).', P);
    this.lagMessages = gauge(
      'winnow_partition_lag_messages',
      'Messages in a Kafka partition not yet in a committed slice (read on scrape; absent while Kafka is unreachable).',
      ['pipeline', 'topic', 'partition'],
    );
    this.lagSeconds = gauge(
      'winnow_partition_lag_seconds',
      'Seconds since the Kafka timestamp of the oldest staged message not yet in a committed slice; 0 without lag; ' +
        'absent while the lagging messages are not staged yet (read on scrape).',
      ['pipeline', 'topic', 'partition'],
    );
  }

  // ---- DaemonObserver ---------------------------------------------------------------

  track(pipeline: string): void {
    const l = { pipeline };
    for (const c of [this.consumed, this.inserted, this.duplicates, this.slicesCommitted, this.slicesFailed])
      c.inc(l, 0);
    for (const reason of ['refused', 'invalid']) this.deadLetters.inc({ pipeline, reason }, 0);
    for (const event of ['started', 'done', 'failed']) this.replays.inc({ pipeline, event }, 0);
    for (const result of ['ok', 'failed']) this.checks.inc({ pipeline, result }, 0);
    this.sliceDuration.zero(l);
    this.sliceRows.zero(l);
    this.latency.zero(l);
    this.leaseHeldGauge.set(l, 0);
  }

  sliceCommitted(pipeline: string, s: CommittedSlice): void {
    const l = { pipeline };
    this.consumed.inc(l, s.rowsIn);
    this.inserted.inc(l, s.inserted);
    this.duplicates.inc(l, s.duplicates);
    this.deadLetters.inc({ pipeline, reason: 'refused' }, s.rejected);
    this.slicesCommitted.inc(l);
    this.sliceDuration.observe(l, s.durationMs / 1000);
    this.sliceRows.observe(l, s.rowsIn);
    if (s.oldestEventMs !== null) this.latency.observe(l, Math.max(0, (s.committedAtMs - s.oldestEventMs) / 1000));
  }

  sliceFailed(pipeline: string): void {
    this.slicesFailed.inc({ pipeline });
  }

  progressed(pipeline: string, atMs: number): void {
    this.lastSuccess.set({ pipeline }, atMs / 1000);
  }

  leaseHeld(pipeline: string, held: boolean): void {
    this.leaseHeldGauge.set({ pipeline }, held ? 1 : 0);
  }

  checked(pipeline: string, ok: boolean, atMs: number): void {
    this.checks.inc({ pipeline, result: ok ? 'ok' : 'failed' });
    this.consistencyOk.set({ pipeline }, ok ? 1 : 0);
    this.consistencyAt.set({ pipeline }, atMs / 1000);
  }

  replay(pipeline: string, event: ReplayEvent): void {
    this.replays.inc({ pipeline, event });
  }

  // ---- on scrape ---------------------------------------------------------------

  /**
   * The dead-letter table's invalid messages, as read on this scrape: the
   * counter rises by what was added since the previous scrape, while this
   * process holds the lease (so holder and standby do not both count). A table
   * that shrank (dropped, emptied) is a new baseline: the counter never falls.
   */
  invalidDeadLetters(pipeline: string, rows: number, holding: boolean): void {
    const before = this.invalidSeen.get(pipeline);
    this.invalidSeen.set(pipeline, rows);
    if (before !== undefined && holding && rows > before)
      this.deadLetters.inc({ pipeline, reason: 'invalid' }, rows - before);
  }

  /** The exposition text (format 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
