import { describeError } from '../errors.ts';
import { Checker, type CheckReport } from '../operations/checker.ts';
import { parseFlags, type Command } from './command.ts';
import { commandLease, CONFIG_FLAG_HELP, withPipelines } from './context.ts';

const help = `Usage: winnow check [--config FILE] [--pipeline NAME] [--json] [--no-repair] [--full]

Checks each pipeline's consistency and repairs what can be repaired:
  uniqueness     no key kept twice within the window (seen keys)
  doubled slices a slice that kept rows twice loses the surplus copies (saved
                 first, then deleted by position; a repair cut short is
                 finished by the next check)
  completeness   every processed staged key is in the final table
  seen vs final  a kept key missing from the final table is re-inserted from
                 staging (reported loudly when staging no longer has it); a
                 final row whose seen key is missing gets its key back
  counts         final rows vs rows inserted by slices and replays
  seen-key index (dedup.index rocksdb) every seen key written within the
                 window has its index entry at its latest kept time; a
                 missing or older entry is written again
  Kafka offsets  committed offsets vs staging and dead letters, per partition;
                 gaps are read back from Kafka: no record there (transaction
                 marker, compaction) is legitimate, an empty message becomes a
                 dead letter, anything else is reported as lost
By default only what changed since the last consistent check is looked at
(slices committed since, replays, new Kafka offsets); --full looks at
everything processed. An incremental check whose counts do not reconcile is
taken again in full.
Repairs need the pipeline's lease: while a daemon runs the pipeline, this
command only reports (the daemon checks and repairs every schedule.checkInterval).
The report is stored and served at GET /api/v1/pipelines/:name/consistency.
Exit code 0 when consistent, 4 when not.

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME  only this pipeline (default: all)
  --json           print the reports as JSON
  --no-repair      report only
  --full           check everything processed, not only what changed`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  json: { type: 'boolean', default: false },
  'no-repair': { type: 'boolean', default: false },
  full: { type: 'boolean', default: false },
} as const;

export function formatReport(r: CheckReport, repaired: boolean): string {
  const mark = (ok: boolean): string => (ok ? 'ok  ' : 'FAIL');
  const lines = [
    `pipeline ${r.pipeline}: ${r.ok ? 'consistent' : 'NOT consistent'} (${r.durationMs} ms, ${r.scope.mode}: ${r.scope.slices} slices${repaired ? '' : ', report only'})`,
    `  ${mark(r.doubled.ok)} doubled slices: ${r.doubled.groups} rows kept twice by one slice (${r.doubled.keys} keys); ${r.doubled.finalRemoved} final and ${r.doubled.seenRemoved} seen-key copies removed${r.doubled.repairs.some((x) => x.resumed) ? ' (an interrupted repair finished)' : ''}`,
    `  ${mark(r.uniqueness.ok)} uniqueness: ${r.uniqueness.violations} keys kept twice within the window${r.uniqueness.examples.length ? ` e.g. ${r.uniqueness.examples.slice(0, 3).join(', ')}` : ''}`,
    `  ${mark(r.completeness.ok)} completeness: ${r.completeness.missing} processed keys missing from the final table${r.completeness.examples.length ? ` e.g. ${r.completeness.examples.slice(0, 3).join(', ')}` : ''}`,
    `  ${mark(r.seenVsFinal.ok)} seen vs final: ${r.seenVsFinal.keptNotInFinal} kept keys without a final row (${r.seenVsFinal.reinsertedFromStaging} re-inserted, ${r.seenVsFinal.unrepairable} beyond repair); ${r.seenVsFinal.finalWithoutSeen} final rows without their seen key (${r.seenVsFinal.seenRestored} restored)`,
    `  ${mark(r.counts.ok)} counts: ${r.counts.finalRows} final rows; ${r.counts.insertedBySlices} inserted by slices, ${r.counts.insertedByReplays} by replays${r.counts.note ? ` (${r.counts.note})` : ''}`,
    `  ${mark(r.offsets.ok)} Kafka offsets: ${r.offsets.checked ? `${r.offsets.partitions.length} partitions` : (r.offsets.error ?? 'not checked')}`,
    ...r.offsets.partitions
      .filter((p) => p.gapOffsets > 0)
      .map(
        (p) =>
          `       ${p.topic}/${p.partition}: ${p.gapOffsets} offsets missing: ${p.legitimate} legitimate, ${p.emptyDeadLettered} empty messages dead-lettered, ${p.lost.length} LOST${p.lost.length ? ` (${p.lost.slice(0, 10).join(', ')})` : ''}`,
      ),
  ];
  if (r.seenIndex.checked)
    lines.push(
      `  ${mark(r.seenIndex.ok)} seen-key index: ${r.seenIndex.missing} seen keys without their index entry (${r.seenIndex.repaired} written again)`,
    );
  if (r.retention.droppedSeenPartitions > 0)
    lines.push(`  dropped ${r.retention.droppedSeenPartitions} expired seen-key partitions`);
  return lines.join('\n');
}

export const checkCommand: Command = {
  name: 'check',
  summary: "check and repair the pipelines' consistency (no duplicates, no gaps, counts that reconcile)",
  help,
  async run(args) {
    const { values } = parseFlags('check', args, flags, false);
    const reports: CheckReport[] = [];
    const failed = await withPipelines(values, async (pipelines, admins) => {
      for (const target of pipelines) {
        const { pipeline, db } = target;
        let repair = !values['no-repair'];
        if (repair) {
          const lease = await commandLease(target);
          if (!lease.held) {
            repair = false;
            process.stderr.write(
              `winnow check: pipeline ${pipeline.name} is run by a daemon (${lease.holder ?? '?'}); reporting only, the daemon repairs\n`,
            );
          }
        }
        try {
          const report = await new Checker(db, pipeline, admins.access(pipeline)).run({ repair, full: values.full });
          reports.push(report);
          if (!values.json) process.stdout.write(formatReport(report, repair) + '\n');
        } catch (err) {
          process.stderr.write(`winnow check: pipeline ${pipeline.name}: ${describeError(err)}\n`);
          return true;
        }
      }
      return false;
    });
    if (failed) return 1;
    if (values.json) process.stdout.write(JSON.stringify({ reports }, null, 2) + '\n');
    return reports.every((r) => r.ok) ? 0 : 4;
  },
};
