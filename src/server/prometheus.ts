/**
 * Prometheus text exposition format 0.0.4, written by hand: a handful of
 * families rendered from PipelineStats does not need a metrics library.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import type { PipelineStats } from './deps.ts';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string | number>;
export interface Sample {
  labels: Labels;
  value: number;
}
export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: Sample[];
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed (quotes stay as they are). */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(String(v))}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Every family keeps its samples together under one HELP and TYPE line, as the format requires. */
export function renderFamilies(families: Family[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) lines.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return lines.join('\n') + '\n';
}

export type StatsOutcome = { pipeline: string; stats: PipelineStats } | { pipeline: string; error: string };

/** The whole /metrics page: a pipeline whose stats failed shows up in winnow_stats_error and nowhere else. */
export function metricFamilies(up: boolean, outcomes: StatsOutcome[]): Family[] {
  const ok = outcomes.flatMap((o) => ('stats' in o ? [o] : []));
  const perPipeline = (
    name: string,
    help: string,
    type: Family['type'],
    value: (s: PipelineStats) => number,
  ): Family => ({
    name,
    help,
    type,
    samples: ok.map((o) => ({ labels: { pipeline: o.pipeline }, value: value(o.stats) })),
  });
  return [
    {
      name: 'winnow_up',
      help: 'Whether winnow is ready to do its work (1) or not (0), as /readyz reports.',
      type: 'gauge',
      samples: [{ labels: {}, value: up ? 1 : 0 }],
    },
    {
      name: 'winnow_stats_error',
      help: 'Whether reading the statistics of a pipeline failed on this scrape (1) or not (0).',
      type: 'gauge',
      samples: outcomes.map((o) => ({ labels: { pipeline: o.pipeline }, value: 'stats' in o ? 0 : 1 })),
    },
    perPipeline(
      'winnow_messages_consumed_total',
      'Messages consumed from Kafka: staged rows plus dead letters.',
      'counter',
      (s) => s.messagesConsumed,
    ),
    perPipeline('winnow_staged_total', 'Rows staged from Kafka.', 'counter', (s) => s.staged),
    perPipeline(
      'winnow_inserted_total',
      'Rows inserted into the final table (first occurrences).',
      'counter',
      (s) => s.inserted,
    ),
    perPipeline(
      'winnow_duplicates_dropped_total',
      'Rows dropped as duplicates within the window.',
      'counter',
      (s) => s.duplicatesDropped,
    ),
    perPipeline(
      'winnow_dead_letters_total',
      'Messages kept as dead letters: unparseable, or refused by the final table.',
      'counter',
      (s) => s.deadLetters,
    ),
    perPipeline(
      'winnow_refused_by_final_total',
      'Staged messages the final table refused, sent to the dead letters.',
      'counter',
      (s) => s.refusedByFinal,
    ),
    perPipeline(
      'winnow_duplicate_ratio',
      'duplicates_dropped / (inserted + duplicates_dropped); 0 when nothing was processed.',
      'gauge',
      (s) => s.duplicateRatio,
    ),
    perPipeline('winnow_pending_rows', 'Rows staged but not yet in a committed slice.', 'gauge', (s) => s.pendingRows),
    {
      name: 'winnow_events_per_second',
      help: 'Rows processed by committed slices per second, averaged over the window.',
      type: 'gauge',
      samples: ok.flatMap((o) => [
        { labels: { pipeline: o.pipeline, window: '1m' }, value: o.stats.eventsPerSecond.last1m },
        { labels: { pipeline: o.pipeline, window: '5m' }, value: o.stats.eventsPerSecond.last5m },
      ]),
    },
    {
      name: 'winnow_partition_lag',
      help: 'Messages in a Kafka partition not yet in a committed slice (absent while Kafka is unreachable).',
      type: 'gauge',
      samples: ok.flatMap((o) =>
        o.stats.partitions.flatMap((p) =>
          p.lag === null
            ? []
            : [{ labels: { pipeline: o.pipeline, topic: p.topic, partition: p.partition }, value: p.lag }],
        ),
      ),
    },
    {
      name: 'winnow_last_slice_duration_seconds',
      help: 'How long the last committed slice took, seconds.',
      type: 'gauge',
      samples: ok.flatMap((o) =>
        o.stats.lastSlice === null
          ? []
          : [{ labels: { pipeline: o.pipeline }, value: o.stats.lastSlice.durationMs / 1000 }],
      ),
    },
  ];
}
