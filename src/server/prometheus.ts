/**
 * The gauges read on each scrape of /metrics: readiness, and per pipeline the
 * tables and Kafka as PipelineStats reads them. The daemon's counters and
 * histograms (metrics.ts) need nothing here. Rates are PromQL's job
 * (`rate(winnow_events_consumed_total[5m])`): no gauge here averages anything.
 */
import type { PipelineHealth, PipelineStats } from './deps.ts';
import type { WinnowMetrics } from './metrics.ts';

/** Prometheus text exposition format 0.0.4, as prom-client writes it. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type StatsOutcome = { pipeline: string; stats: PipelineStats } | { pipeline: string; error: string };

/**
 * Sets the scrape-time gauges. A pipeline whose stats failed shows in
 * winnow_stats_error and in none of the table gauges; partitions that are gone
 * (or whose lag is unknown) disappear from the lag gauges rather than keep a
 * stale value.
 */
export function observeScrape(
  m: WinnowMetrics,
  up: boolean,
  outcomes: StatsOutcome[],
  health: Record<string, PipelineHealth> = {},
): void {
  m.up.set(up ? 1 : 0);
  for (const g of [m.statsError, m.pendingRows, m.stagingRows, m.deadLetterRows, m.lagMessages, m.lagSeconds])
    g.reset();
  for (const o of outcomes) {
    const pipeline = o.pipeline;
    m.statsError.set({ pipeline }, 'stats' in o ? 0 : 1);
    if (!('stats' in o)) continue;
    const s = o.stats;
    m.pendingRows.set({ pipeline }, s.pendingRows);
    m.stagingRows.set({ pipeline }, s.staged);
    m.deadLetterRows.set({ pipeline }, s.deadLetters);
    // Dead letters that never reached staging: consumed minus staged (stats.ts).
    m.invalidDeadLetters(pipeline, s.messagesConsumed - s.staged, health[pipeline]?.state === 'processing');
    for (const p of s.partitions) {
      const labels = { pipeline, topic: p.topic, partition: String(p.partition) };
      if (p.lag !== null) m.lagMessages.set(labels, p.lag);
      if (p.lagSeconds !== null) m.lagSeconds.set(labels, p.lagSeconds);
    }
  }
}
