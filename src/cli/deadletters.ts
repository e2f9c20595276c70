import { WinnowError } from '../errors.ts';
import { listDeadLetters, replayDeadLetters, type DeadLetterReplay } from '../operations/deadletters.ts';
import { configFingerprint, jobStatus, type ReplayJob } from '../operations/replay-jobs.ts';
import { parseOffsets, Replayer, type OffsetSpec } from '../operations/replay.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, requireCommandLease, withOnePipeline } from './context.ts';
import { existingJob, followJob, queuedLine, submitJob } from './replay-job.ts';

const help = `Usage: winnow deadletters list   --config FILE [--pipeline NAME] [--limit N] [--json]
       winnow deadletters replay --config FILE [--pipeline NAME] (--all | --offsets P:O,...) [--no-wait] [--json]
       winnow deadletters replay --config FILE [--pipeline NAME] --follow JOB [--json]

Dead letters are messages that could not become a row (malformed JSON, invalid
UTF-8, a missing or null key, a value of the wrong type, ...), kept with the
reason and their Kafka coordinates in winnow_<name>_errors.

  list     the newest dead letters with their reasons (default 20)
  replay   after fixing the cause (e.g. a column made optional), run the chosen
           dead letters through the pipeline's current validation again: those
           that pass are staged with their original coordinates, deduplicated and
           removed from the dead letters; the rest stay, with their reason.
           A job (winnow_replay_jobs): a daemon holding the pipeline runs it between
           slices while this command follows it (the daemon must run with the same
           columns and dedup settings as --config, or it refuses the job); with no
           daemon, this command runs it

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME   the pipeline (required when the file has several)
  --limit N         list: how many (1-10000, default 20)
  --all             replay: every dead letter
  --offsets LIST    replay: PARTITION:OFFSET or TOPIC/PARTITION:OFFSET, comma-separated
  --no-wait         replay: queue the job, print its id and return
  --follow JOB      replay: follow a queued or running job to its end (and run it when no
                    daemon holds the pipeline)
  --json            print JSON`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean', default: false },
  offsets: { type: 'string' },
  'no-wait': { type: 'boolean', default: false },
  follow: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function printOutcome(pipeline: string, r: DeadLetterReplay, json: boolean, jobId?: string): void {
  if (json) {
    process.stdout.write(JSON.stringify(jobId ? { jobId, ...r } : r, null, 2) + '\n');
    return;
  }
  process.stdout.write(
    `pipeline ${pipeline}: ${r.selected} dead letters selected, ${r.reingested} re-ingested ` +
      `(${r.replay?.inserted ?? 0} new rows now, ${r.waitingForSlice} wait for the next slice of \`winnow run\`), ` +
      `${r.stillFailing} still failing${jobId ? ` (job ${jobId})` : ''}\n`,
  );
  for (const x of r.reasons) process.stdout.write(`  ${x.count} × ${x.error}\n`);
}

function printable(raw: string, max = 120): string {
  const s = JSON.stringify(raw);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

export const deadlettersCommand: Command = {
  name: 'deadletters',
  summary: 'list dead letters, or re-ingest them once their cause is fixed',
  help,
  async run(args) {
    const { values, positionals } = parseFlags('deadletters', args, flags);
    const [action, ...extra] = positionals;
    if (extra.length > 0 || (action !== 'list' && action !== 'replay')) {
      throw new WinnowError('USAGE', 'deadletters: say list or replay', { hint: 'see: winnow deadletters --help' });
    }
    return withOnePipeline('deadletters', values, async (target, admins) => {
      const { pipeline, db } = target;
      if (action === 'list') {
        if (values.all || values.offsets)
          throw new WinnowError('USAGE', 'deadletters list: --all and --offsets go with replay');
        const limit = Number(values.limit ?? '20');
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
          throw new WinnowError('USAGE', `deadletters list: --limit must be an integer 1-10000, got "${values.limit}"`);
        const { total, letters } = await listDeadLetters(db, pipeline, limit);
        if (values.json) process.stdout.write(JSON.stringify({ total, letters }, null, 2) + '\n');
        else {
          process.stdout.write(
            `pipeline ${pipeline.name}: ${total} dead letters${total > letters.length ? ` (newest ${letters.length} shown)` : ''}\n`,
          );
          for (const l of letters)
            process.stdout.write(`  ${l.topic}/${l.partition}:${l.offset}  ${l.error}\n      ${printable(l.raw)}\n`);
        }
        return 0;
      }
      if (values.limit !== undefined) throw new WinnowError('USAGE', 'deadletters replay: --limit goes with list');
      const opts = { label: 'deadletters', noWait: values['no-wait'], quiet: false };
      let job: ReplayJob | undefined;
      if (values.follow !== undefined) {
        if (values.all || values.offsets !== undefined || values['no-wait']) {
          throw new WinnowError('USAGE', 'deadletters replay: --follow takes no selection and no --no-wait');
        }
        job = await followJob(target, admins, await existingJob(target, values.follow), opts);
      } else {
        if (values.all === (values.offsets !== undefined)) {
          throw new WinnowError('USAGE', 'deadletters replay: give --all or --offsets');
        }
        const which: OffsetSpec[] | 'all' = values.all ? 'all' : parseOffsets(values.offsets ?? '');
        const request = { kind: 'deadletters' as const, which, fingerprint: configFingerprint(pipeline) };
        job = await submitJob(target, admins, request, opts);
        if (job === undefined) {
          // A database without winnow_replay_jobs: run it here, as before, only while no daemon holds the pipeline.
          await requireCommandLease(
            target,
            'run winnow migrate up, and the daemon runs them; or stop it, replay the dead letters, start it again',
          );
          const admin = await admins.adminIfReachable(pipeline);
          const say = (line: string): boolean => process.stderr.write(`deadletters ${pipeline.name}: ${line}\n`);
          const replayer = new Replayer(db, pipeline, admin, say);
          printOutcome(pipeline.name, await replayDeadLetters(db, pipeline, which, replayer), values.json);
          return 0;
        }
        if (values['no-wait']) {
          const text = values.json ? JSON.stringify(jobStatus(job), null, 2) + '\n' : queuedLine('deadletters', job);
          process.stdout.write(text);
          return 0;
        }
      }
      if (job.kind !== 'deadletters' || job.result === null) {
        process.stdout.write(JSON.stringify(jobStatus(job), null, 2) + '\n');
      } else printOutcome(pipeline.name, job.result as DeadLetterReplay, values.json, job.jobId);
      return 0;
    });
  },
};
