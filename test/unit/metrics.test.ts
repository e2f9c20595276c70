/**
 * The metrics of one `winnow run` (src/server/metrics.ts) as /metrics serves
 * them, read back with a real Prometheus text parser: counters only rise, as
 * the daemon reports slices; histograms have buckets, sum and count; gauges
 * come from each scrape; every app has a registry of its own.
 */
import { describe, expect, it } from 'vitest';
import { WinnowMetrics } from '../../src/server/metrics.ts';
import { observeScrape } from '../../src/server/prometheus.ts';
import type { PipelineStats } from '../../src/server/deps.ts';
import { parseScrape, sampleValue } from '../support/prom-text.ts';

const slice = { rowsIn: 100, inserted: 90, duplicates: 10, rejected: 0, durationMs: 250 };

function stats(over: Partial<PipelineStats> = {}): PipelineStats {
  return {
    name: 'clicks',
    messagesConsumed: 105,
    staged: 100,
    inserted: 90,
    duplicatesDropped: 10,
    duplicateRatio: 0.1,
    deadLetters: 5,
    refusedByFinal: 0,
    pendingRows: 7,
    partitions: [
      {
        topic: 'clicks',
        partition: 0,
        nextOffset: 10,
        stagedHigh: 16,
        logEnd: 17,
        consumerOffset: 17,
        lag: 7,
        lagSeconds: 3.5,
      },
      {
        topic: 'clicks',
        partition: 1,
        nextOffset: 0,
        stagedHigh: null,
        logEnd: null,
        consumerOffset: null,
        lag: null,
        lagSeconds: null,
      },
    ],
    lastSlice: null,
    eventsPerSecond: { last1m: 590, last5m: 590 },
    lastError: null,
    ...over,
  };
}

const scrape = async (m: WinnowMetrics) => parseScrape(await m.render());

describe('WinnowMetrics', () => {
  it('counts committed slices into counters and histograms', async () => {
    const m = new WinnowMetrics({ version: '9.9.9' });
    m.track('clicks');
    let s = await scrape(m);
    expect(sampleValue(s, 'winnow_events_inserted_total', { pipeline: 'clicks' })).toBe(0);
    expect(sampleValue(s, 'winnow_slice_duration_seconds_count', { pipeline: 'clicks' })).toBe(0);
    expect(sampleValue(s, 'winnow_lease_held', { pipeline: 'clicks' })).toBe(0);

    const now = Date.now();
    m.sliceCommitted('clicks', { ...slice, committedAtMs: now, oldestEventMs: now - 4_000 });
    m.sliceCommitted('clicks', {
      ...slice,
      rowsIn: 1,
      inserted: 0,
      duplicates: 0,
      rejected: 1,
      committedAtMs: now,
      oldestEventMs: null,
    });
    m.sliceFailed('clicks');
    m.leaseHeld('clicks', true);
    m.checked('clicks', false, 1_700_000_000_000);
    m.replay('clicks', 'started');
    m.replay('clicks', 'done');
    m.progressed('clicks', 1_700_000_001_000);
    s = await scrape(m);
    const l = { pipeline: 'clicks' };
    expect(s.families.get('winnow_events_consumed_total')?.type).toBe('COUNTER');
    expect(sampleValue(s, 'winnow_events_consumed_total', l)).toBe(101);
    expect(sampleValue(s, 'winnow_events_inserted_total', l)).toBe(90);
    expect(sampleValue(s, 'winnow_duplicates_dropped_total', l)).toBe(10);
    expect(sampleValue(s, 'winnow_dead_letters_total', { ...l, reason: 'refused' })).toBe(1);
    expect(sampleValue(s, 'winnow_slices_committed_total', l)).toBe(2);
    expect(sampleValue(s, 'winnow_slices_failed_total', l)).toBe(1);
    expect(sampleValue(s, 'winnow_replay_jobs_total', { ...l, event: 'started' })).toBe(1);
    expect(sampleValue(s, 'winnow_replay_jobs_total', { ...l, event: 'done' })).toBe(1);
    expect(sampleValue(s, 'winnow_replay_jobs_total', { ...l, event: 'failed' })).toBe(0);
    expect(sampleValue(s, 'winnow_consistency_checks_total', { ...l, result: 'failed' })).toBe(1);
    expect(sampleValue(s, 'winnow_consistency_ok', l)).toBe(0);
    expect(sampleValue(s, 'winnow_consistency_check_timestamp_seconds', l)).toBe(1_700_000_000);
    expect(sampleValue(s, 'winnow_last_success_timestamp_seconds', l)).toBe(1_700_000_001);
    expect(sampleValue(s, 'winnow_lease_held', l)).toBe(1);

    expect(s.families.get('winnow_slice_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(sampleValue(s, 'winnow_slice_duration_seconds_count', l)).toBe(2);
    expect(sampleValue(s, 'winnow_slice_duration_seconds_sum', l)).toBeCloseTo(0.5);
    expect(sampleValue(s, 'winnow_slice_duration_seconds_bucket', { ...l, le: '0.1' })).toBe(0);
    expect(sampleValue(s, 'winnow_slice_duration_seconds_bucket', { ...l, le: '0.25' })).toBe(2);
    expect(sampleValue(s, 'winnow_slice_rows_bucket', { ...l, le: '1' })).toBe(1);
    expect(sampleValue(s, 'winnow_slice_rows_bucket', { ...l, le: '+Inf' })).toBe(2);
    // one latency observation: the slice with a known oldest Kafka timestamp
    expect(sampleValue(s, 'winnow_end_to_end_latency_seconds_count', l)).toBe(1);
    expect(sampleValue(s, 'winnow_end_to_end_latency_seconds_sum', l)).toBeCloseTo(4);
    expect(sampleValue(s, 'winnow_end_to_end_latency_seconds_bucket', { ...l, le: '2.5' })).toBe(0);
    expect(sampleValue(s, 'winnow_end_to_end_latency_seconds_bucket', { ...l, le: '5' })).toBe(1);
  });

  it('build info and process metrics are there', async () => {
    const s = await scrape(new WinnowMetrics({ version: '9.9.9' }));
    expect(sampleValue(s, 'winnow_build_info', { version: '9.9.9', node_version: process.version })).toBe(1);
    expect(sampleValue(s, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(sampleValue(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.families.has('nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it("reads winnow's version from package.json by default", async () => {
    const s = await scrape(new WinnowMetrics({ processMetrics: false }));
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    expect(sampleValue(s, 'winnow_build_info', { version })).toBe(1);
    expect(s.samples.has('process_cpu_seconds_total')).toBe(false);
  });

  it('every app has its own registry', async () => {
    const a = new WinnowMetrics({ processMetrics: false });
    const b = new WinnowMetrics({ processMetrics: false });
    a.track('clicks');
    b.track('clicks');
    a.sliceCommitted('clicks', { ...slice, committedAtMs: 0, oldestEventMs: null });
    expect(sampleValue(await scrape(a), 'winnow_events_inserted_total', { pipeline: 'clicks' })).toBe(90);
    expect(sampleValue(await scrape(b), 'winnow_events_inserted_total', { pipeline: 'clicks' })).toBe(0);
  });

  it('scrape gauges follow the stats; no events_per_second; table totals are no counters', async () => {
    const m = new WinnowMetrics({ processMetrics: false });
    observeScrape(m, true, [{ pipeline: 'clicks', stats: stats() }]);
    const s = await scrape(m);
    const l = { pipeline: 'clicks' };
    expect(sampleValue(s, 'winnow_up')).toBe(1);
    expect(sampleValue(s, 'winnow_pending_rows', l)).toBe(7);
    expect(sampleValue(s, 'winnow_staging_rows', l)).toBe(100);
    expect(sampleValue(s, 'winnow_dead_letter_rows', l)).toBe(5);
    expect(sampleValue(s, 'winnow_partition_lag_messages', { ...l, partition: '0' })).toBe(7);
    expect(sampleValue(s, 'winnow_partition_lag_seconds', { ...l, partition: '0' })).toBe(3.5);
    // unknown lag: no sample rather than a made-up one
    expect(sampleValue(s, 'winnow_partition_lag_messages', { ...l, partition: '1' })).toBeUndefined();
    expect(sampleValue(s, 'winnow_partition_lag_seconds', { ...l, partition: '1' })).toBeUndefined();
    // the stats' 90 inserted rows are a table count, not what this process counted
    expect(sampleValue(s, 'winnow_events_inserted_total', l)).toBeUndefined();
    expect([...s.families.keys()].filter((n) => n.includes('per_second'))).toEqual([]);
    // gauges only; _total only on counters
    for (const f of s.families.values()) {
      if (f.name.endsWith('_total')) expect(f.type, f.name).toBe('COUNTER');
      expect(f.name.startsWith('winnow_'), f.name).toBe(true);
    }
  });

  it('a pipeline whose stats fail has winnow_stats_error 1 and no table gauges', async () => {
    const m = new WinnowMetrics({ processMetrics: false });
    observeScrape(m, false, [
      { pipeline: 'clicks', stats: stats() },
      { pipeline: 'broken', error: 'clickhouse down' },
    ]);
    const s = await scrape(m);
    expect(sampleValue(s, 'winnow_up')).toBe(0);
    expect(sampleValue(s, 'winnow_stats_error', { pipeline: 'broken' })).toBe(1);
    expect(sampleValue(s, 'winnow_stats_error', { pipeline: 'clicks' })).toBe(0);
    for (const [name, samples] of s.samples)
      if (name !== 'winnow_stats_error') expect(samples.filter((x) => x.labels['pipeline'] === 'broken')).toEqual([]);
  });

  it('invalid dead letters: counted by the rise between scrapes while holding; a shrunk table never lowers it', async () => {
    const m = new WinnowMetrics({ processMetrics: false });
    m.track('clicks');
    const processing = { clicks: { state: 'processing' } } as never;
    const standby = { clicks: { state: 'standby' } } as never;
    const invalid = async () =>
      sampleValue(await scrape(m), 'winnow_dead_letters_total', { pipeline: 'clicks', reason: 'invalid' });
    observeScrape(m, true, [{ pipeline: 'clicks', stats: stats({ messagesConsumed: 103, staged: 100 }) }], processing);
    expect(await invalid()).toBe(0); // the first scrape is the baseline
    observeScrape(m, true, [{ pipeline: 'clicks', stats: stats({ messagesConsumed: 108, staged: 100 }) }], processing);
    expect(await invalid()).toBe(5);
    observeScrape(m, true, [{ pipeline: 'clicks', stats: stats({ messagesConsumed: 110, staged: 100 }) }], standby);
    expect(await invalid()).toBe(5); // the standby does not count
    observeScrape(m, true, [{ pipeline: 'clicks', stats: stats({ messagesConsumed: 0, staged: 0 }) }], processing);
    expect(await invalid()).toBe(5); // migrate down, tables emptied: the counter stays
    observeScrape(m, true, [{ pipeline: 'clicks', stats: stats({ messagesConsumed: 2, staged: 0 }) }], processing);
    expect(await invalid()).toBe(7);
  });
});
