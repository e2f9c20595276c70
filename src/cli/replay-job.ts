/**
 * What `replay` and `deadletters replay` share: the request becomes a job in
 * winnow_replay_jobs (operations/replay-jobs.ts). A daemon holding the
 * pipeline runs it between slices while this command follows its progress;
 * when no daemon holds the pipeline, this command runs it itself under the
 * command lease (and hands the rest over if a daemon takes the pipeline
 * meanwhile). `--no-wait` only queues it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { hostname } from 'node:os';
import { WinnowError } from '../errors.ts';
import type { KafkaAdmins } from '../kafka/admins.ts';
import {
  commandRunner,
  describeJob,
  isClosed,
  isMissingJobsTable,
  jobStatus,
  ReplayJobRunner,
  ReplayJobs,
  type JobRequest,
  type ReplayJob,
} from '../operations/replay-jobs.ts';
import { leaseEpochMs } from '../slicing/lease.ts';
import { commandLease, type Target } from './context.ts';

/** How often a follower reads the job. */
const FOLLOW_POLL_MS = 1_000;

export interface JobOptions {
  /** command name for progress lines: `replay` or `deadletters` */
  label: string;
  /** only queue it; print the id */
  noWait: boolean;
  /** quiet progress (no lines on stderr) */
  quiet?: boolean;
}

/** Who asks: shown in the job and the daemon's log. */
const requester = (): string => `cli:${hostname()}:${process.pid}`;

/**
 * Queues the request as a job and, unless `noWait`, follows it to its end
 * (running it here when no daemon holds the pipeline). Returns the job, or
 * undefined when the database has no jobs table (migrated by an older winnow):
 * the caller then runs the request here as before.
 */
export async function submitJob(
  target: Target,
  admins: KafkaAdmins,
  request: JobRequest,
  o: JobOptions,
): Promise<ReplayJob | undefined> {
  const jobs = new ReplayJobs(target.db, target.pipeline);
  let job: ReplayJob;
  try {
    job = await jobs.enqueue(request, requester());
  } catch (err) {
    if (!isMissingJobsTable(err)) throw err;
    process.stderr.write(
      `${o.label} ${target.pipeline.name}: winnow_replay_jobs is missing (run winnow migrate up): ` +
        'running here, without hand-over\n',
    );
    return undefined;
  }
  if (o.noWait) return job;
  return followJob(target, admins, job, o);
}

/** Follows a job until it is done or failed, printing its progress; runs it here while no daemon holds the pipeline. */
export async function followJob(
  target: Target,
  admins: KafkaAdmins,
  job: ReplayJob,
  o: JobOptions,
): Promise<ReplayJob> {
  const { pipeline: p } = target;
  const say = (line: string): void => {
    if (!o.quiet) process.stderr.write(`${o.label} ${p.name}: ${line}\n`);
  };
  const epochMs = leaseEpochMs();
  // The command lease lasts to the end of the current term (half an epoch): a step starts only with enough of it left.
  const termMs = Math.floor(epochMs / 2);
  let lastStepMs = 0;
  let lastCall = 0;
  // Held only while no daemon holds the pipeline and enough of the epoch is left for a step.
  const keepLease = async (): Promise<boolean> => {
    if (lastCall > 0) lastStepMs = Date.now() - lastCall;
    for (;;) {
      const lease = await commandLease(target);
      if (!lease.held) return false;
      const left = lease.heldUntil - Date.now();
      if (left > Math.min(termMs / 2, Math.max(1_000, 2 * lastStepMs))) {
        lastCall = Date.now();
        return true;
      }
      await sleep(left + 20); // the next term, then claim it
    }
  };
  const runner = new ReplayJobRunner({
    db: target.db,
    pipeline: p,
    owner: commandRunner(),
    admin: () => admins.adminIfReachable(p),
    keepLease,
    progress: say,
  });
  const jobs = runner.jobs;
  let j = job;
  let shown = '';
  const show = (x: ReplayJob): void => {
    const line = describeJob(jobStatus(x));
    if (line !== shown) say(line);
    shown = line;
  };
  show(j);
  let leaseCheckAt = 0; // now: a daemon holds the pipeline, or this command runs the job
  let seenRev = j.rev;
  while (!isClosed(j.state)) {
    if (Date.now() >= leaseCheckAt) {
      if ((await commandLease(target)).held) {
        j = await runHere(runner, j, say, show);
        if (isClosed(j.state)) break;
        say(`a daemon (or another command) runs the pipeline's jobs now; following job ${j.jobId}`);
      } else if (leaseCheckAt === 0) {
        say(`handed to the daemon holding the pipeline; following job ${j.jobId}`);
      }
      // Asked again only when the job makes no progress for three epochs: its holder may be gone, and
      // a standby daemon takes over within two (it then goes on, and this command keeps following).
      leaseCheckAt = Date.now() + 3 * epochMs;
    }
    await sleep(FOLLOW_POLL_MS);
    j = (await jobs.get(j.jobId)) ?? j;
    if (j.rev !== seenRev) {
      seenRev = j.rev;
      leaseCheckAt = Date.now() + 3 * epochMs;
      show(j);
    }
  }
  show(j);
  if (j.state === 'failed') throw new WinnowError('INTERNAL', `${o.label} job ${j.jobId} failed: ${j.error}`);
  return j;
}

/**
 * Runs the pipeline's open jobs here, oldest first, up to and including `job`,
 * as the daemon would: one job at a time, so two replays never insert the same
 * lost key side by side. Stops when the lease is lost or another runner has the
 * job; returns `job` as it stands then.
 */
async function runHere(
  runner: ReplayJobRunner,
  job: ReplayJob,
  say: (line: string) => void,
  show: (j: ReplayJob) => void,
) {
  say(`no daemon holds the pipeline: running job ${job.jobId} here`);
  for (;;) {
    const next = await runner.jobs.nextOpen();
    if (!next) return (await runner.jobs.get(job.jobId)) ?? job;
    if (next.jobId === job.jobId) return runner.runToEnd(next, show);
    say(`running job ${next.jobId} first: it was asked earlier`);
    const after = await runner.runToEnd(next);
    if (!isClosed(after.state)) return (await runner.jobs.get(job.jobId)) ?? job;
  }
}

/** The job named by --follow, or NOT_FOUND. */
export async function existingJob(target: Target, id: string): Promise<ReplayJob> {
  const job = await new ReplayJobs(target.db, target.pipeline).get(id);
  if (!job)
    throw new WinnowError('NOT_FOUND', `pipeline ${target.pipeline.name} has no replay job ${JSON.stringify(id)}`);
  return job;
}

/** What --no-wait prints: the id and how to follow it. */
export function queuedLine(label: string, job: ReplayJob): string {
  const follow = label === 'replay' ? 'winnow replay --follow' : 'winnow deadletters replay --follow';
  return (
    `job ${job.jobId} queued for pipeline ${job.pipeline}: the daemon holding the pipeline runs it between slices; ` +
    `follow it with \`${follow} ${job.jobId}\` (which also runs it when no daemon does) ` +
    `or GET /api/v1/pipelines/${job.pipeline}/replays/${job.jobId}\n`
  );
}
