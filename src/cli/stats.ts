import { describeError } from '../errors.ts';
import { formatDuration } from '../config/duration.ts';
import { pipelineStats, type PipelineStats } from '../operations/stats.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, withPipelines } from './context.ts';

const help = `Usage: winnow stats [--config FILE] [--pipeline NAME] [--json]

Prints each pipeline's numbers: messages consumed, staged, inserted, duplicates
dropped and their ratio, dead letters, rows waiting, per-partition watermark and
Kafka lag, the last slice, events/s over 1 and 5 minutes. The same numbers as
GET /api/v1/pipelines/:name/stats.

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME  only this pipeline (default: all)
  --json           one JSON object: { "pipelines": [...] }`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export function formatStats(s: PipelineStats, windowMs: number): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const lines = [
    `pipeline ${s.name} (window ${formatDuration(windowMs)})`,
    `  consumed ${s.messagesConsumed}  staged ${s.staged}  inserted ${s.inserted}  duplicates ${s.duplicatesDropped} (${pct(s.duplicateRatio)})  dead letters ${s.deadLetters}${s.refusedByFinal > 0 ? ` (${s.refusedByFinal} refused by the final table)` : ''}  waiting ${s.pendingRows}`,
    `  events/s  1m ${s.eventsPerSecond.last1m.toFixed(1)}  5m ${s.eventsPerSecond.last5m.toFixed(1)}`,
    s.lastSlice
      ? `  last slice #${s.lastSlice.seq} at ${s.lastSlice.committedAt ?? '-'}: ${s.lastSlice.rowsIn} in, ${s.lastSlice.inserted} inserted, ${s.lastSlice.duplicates} duplicates, ${Math.round(s.lastSlice.durationMs)} ms`
      : '  no slice yet',
    ...s.partitions.map(
      (p) =>
        `  ${p.topic}/${p.partition}: next offset ${p.nextOffset}, staged up to ${p.stagedHigh ?? '-'}, log end ${p.logEnd ?? '-'}, lag ${p.lag ?? '-'}`,
    ),
  ];
  if (s.lastError) lines.push(`  last error: ${s.lastError}`);
  return lines.join('\n');
}

export const statsCommand: Command = {
  name: 'stats',
  summary: 'print dedup statistics of the pipelines',
  help,
  async run(args) {
    const { values } = parseFlags('stats', args, flags, false);
    return withPipelines(values, async (pipelines, admins) => {
      const notes: string[] = [];
      const all = await Promise.all(
        pipelines.map(async ({ pipeline, db }) => {
          const offsets = await admins.offsets(pipeline).catch((err: unknown) => {
            notes.push(`winnow stats: ${pipeline.name}: Kafka offsets unavailable: ${describeError(err)}`);
            return undefined;
          });
          return { stats: await pipelineStats(db, pipeline, offsets), windowMs: pipeline.dedup.windowMs };
        }),
      );
      // Only with the numbers: when ClickHouse fails, its one error line says it all.
      for (const n of notes) process.stderr.write(n + '\n');
      if (values.json) process.stdout.write(JSON.stringify({ pipelines: all.map((a) => a.stats) }, null, 2) + '\n');
      else process.stdout.write(all.map((a) => formatStats(a.stats, a.windowMs)).join('\n\n') + '\n');
      return 0;
    });
  },
};
