import { WinnowError } from '../errors.ts';
import { configFingerprint, jobStatus, type ReplayJob } from '../operations/replay-jobs.ts';
import { checkBound, replayBound, Replayer, type ReplayResult } from '../operations/replay.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, requireCommandLease, withOnePipeline } from './context.ts';
import { existingJob, followJob, queuedLine, submitJob } from './replay-job.ts';

const help = `Usage: winnow replay --config FILE [--pipeline NAME] (--from-timestamp T | --from-offsets P:O,...)
                     [--to T|P:O,...] [--no-wait] [--json]
       winnow replay --config FILE [--pipeline NAME] --follow JOB [--json]

Re-processes offsets the pipeline has already processed, through the same
windowed anti-join: a replay adds a row only for a key that is not represented
within the window, so it is safe over data already in the final table. Ranges
still in staging are re-read from there; where staging no longer holds them, the
Kafka engine is rewound (queue detached, consumer group offsets set, queue
attached) and the replay waits until the messages are staged again.

The replay is a job (winnow_replay_jobs). While a daemon (winnow run) holds the
pipeline, it runs the job between slices, and this command follows its progress
until it is done; no need to stop the daemon. When no daemon holds the pipeline,
this command runs the job itself. A job whose runner dies is resumed by the next
holder of the pipeline; its chunks are deduplicated by token, so nothing is
inserted twice.

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME        the pipeline (required when the file has several)
  --from-timestamp T     ISO-8601 (2026-11-27T10:00:00Z) or ms since the epoch; the
                         offsets come from Kafka (or staging when Kafka is unreachable)
  --from-offsets LIST    PARTITION:OFFSET, or TOPIC/PARTITION:OFFSET for several topics
  --to BOUND             upper bound in the same form (default: everything processed)
  --no-wait              queue the job, print its id and return (follow it with --follow
                         or GET /api/v1/pipelines/:name/replays/:id)
  --follow JOB           follow a queued or running job to its end (and run it when no
                         daemon holds the pipeline)
  --json                 print the result (or, with --no-wait, the job) as JSON`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  'from-timestamp': { type: 'string' },
  'from-offsets': { type: 'string' },
  to: { type: 'string' },
  'no-wait': { type: 'boolean', default: false },
  follow: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

const rewoundText = (r: ReplayResult): string =>
  r.rewound.map((x) => `${x.topic}/${x.partition}:${x.offset}`).join(', ');

function printResult(pipeline: string, result: ReplayResult, json: boolean, jobId?: string): void {
  if (json) {
    process.stdout.write(JSON.stringify(jobId ? { jobId, ...result } : result, null, 2) + '\n');
    return;
  }
  process.stdout.write(
    `replayed ${result.rowsIn} rows of pipeline ${pipeline} in ${result.chunks} chunks: ` +
      `${result.inserted} inserted, ${result.duplicates} already represented` +
      (result.rewound.length ? `; rewound the Kafka engine on ${rewoundText(result)}` : '') +
      (jobId ? ` (job ${jobId})` : '') +
      '\n',
  );
}

export const replayCommand: Command = {
  name: 'replay',
  summary:
    're-process a range from an offset or a timestamp (adds nothing already represented); a running daemon does it',
  help,
  async run(args) {
    const { values } = parseFlags('replay', args, flags, false);
    const ts = values['from-timestamp'];
    const offs = values['from-offsets'];
    const follow = values.follow;
    if (follow !== undefined) {
      if (ts !== undefined || offs !== undefined || values.to !== undefined || values['no-wait']) {
        throw new WinnowError('USAGE', 'replay: --follow takes no bounds and no --no-wait', {
          hint: 'see: winnow replay --help',
        });
      }
    } else if ((ts === undefined) === (offs === undefined)) {
      throw new WinnowError('USAGE', 'replay: give exactly one of --from-timestamp and --from-offsets', {
        hint: 'see: winnow replay --help',
      });
    }
    const from =
      follow !== undefined
        ? undefined
        : offs !== undefined
          ? replayBound(offs, 'offsets')
          : replayBound(ts ?? '', 'timestamp');
    const to = values.to === undefined || from === undefined ? undefined : replayBound(values.to, from.kind);
    return withOnePipeline('replay', values, async (target, admins) => {
      const { pipeline, db } = target;
      const opts = { label: 'replay', noWait: values['no-wait'], quiet: false };
      let job: ReplayJob | undefined;
      if (from === undefined) {
        job = await followJob(target, admins, await existingJob(target, follow ?? ''), opts);
      } else {
        for (const b of [from, ...(to ? [to] : [])]) checkBound(pipeline, b);
        job = await submitJob(
          target,
          admins,
          { kind: 'replay', from, ...(to ? { to } : {}), fingerprint: configFingerprint(pipeline) },
          opts,
        );
        if (job === undefined) {
          // A database without winnow_replay_jobs: run it here, as before, only while no daemon holds the pipeline.
          await requireCommandLease(
            target,
            'run winnow migrate up, and the daemon runs replays; or stop it, replay, start it again',
          );
          const admin = await admins.adminIfReachable(pipeline);
          const replayer = new Replayer(db, pipeline, admin, (line) =>
            process.stderr.write(`replay ${pipeline.name}: ${line}\n`),
          );
          printResult(pipeline.name, await replayer.run({ from, ...(to ? { to } : {}), reason: 'cli' }), values.json);
          return 0;
        }
        if (values['no-wait']) {
          process.stdout.write(
            values.json ? JSON.stringify(jobStatus(job), null, 2) + '\n' : queuedLine('replay', job),
          );
          return 0;
        }
      }
      if (job.kind !== 'replay' || job.result === null) {
        process.stdout.write(JSON.stringify(jobStatus(job), null, 2) + '\n');
        return 0;
      }
      printResult(pipeline.name, job.result as ReplayResult, values.json, job.jobId);
      return 0;
    });
  },
};
