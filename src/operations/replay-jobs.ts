/**
 * Why one file over 300 lines: the job protocol (rows with revisions, claim, steps, resume) is one invariant and is read as one.
 *
 * Replays while the daemon runs. A replay or dead-letter replay is a job: a
 * request row in winnow_replay_jobs that whoever holds the pipeline runs, the
 * daemon between slices (never in the middle of one), or the CLI itself under
 * the command lease when no daemon holds the pipeline. Every change of a job
 * is a new row, its revision + 1, written with the insert deduplication token
 * of that revision and read back: of two runners racing for one revision only
 * one row survives, and the other stops (a compare-and-set, as the lease's).
 *
 * A job runs in steps, each written before the next starts: claim, plan (the
 * ranges, fixed from then on; for dead letters first what the re-ingest will
 * do, then the re-ingest), one step per chunk, finish. A runner that dies or
 * loses the lease leaves the job 'running'; the next holder claims it and
 * resumes at the first chunk not recorded as done. A chunk runs under the
 * token `<pipeline>-<job id>-<chunk>` over the planned ranges, so re-running
 * one that had landed inserts nothing (I5), and its record in winnow_replays
 * is tokened too.
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Admin } from 'kafkajs';
import { CH, ClickHouseFailure, type Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import { tokenInsert } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError, WinnowError } from '../errors.ts';
import { REPLAY_JOBS_TABLE } from '../provisioning/objects.ts';
import {
  deadLetterOutcome,
  forgetReplayedRefusals,
  planDeadLetterReplay,
  reingestDeadLetters,
  type DeadLetterPlan,
  type DeadLetterReplay,
} from './deadletters.ts';
import {
  chunk,
  newReplayId,
  offsetsIn,
  Replayer,
  type OffsetSpec,
  type ReplayBound,
  type ReplayPlan,
  type ReplayResult,
  type RewindState,
} from './replay.ts';

export type JobKind = 'replay' | 'deadletters';
export type JobState = 'queued' | 'running' | 'done' | 'failed';

/** What was asked, with the fingerprint of the requester's configuration (a runner with another refuses). */
export type JobRequest =
  | { kind: 'replay'; from: ReplayBound; to?: ReplayBound; fingerprint: string }
  | { kind: 'deadletters'; which: OffsetSpec[] | 'all'; fingerprint: string };

/** Fixed as the job goes: what the dead-letter re-ingest does (stored before it runs), then the replay's ranges. */
export interface JobPlan {
  deadLetters?: DeadLetterPlan;
  /** a rewind of the Kafka engine begun while planning: a resumed plan does it again and waits for it */
  rewind?: RewindState;
  replay?: ReplayPlan;
}

export interface ReplayJob {
  pipeline: string;
  jobId: string;
  rev: number;
  kind: JobKind;
  state: JobState;
  request: JobRequest;
  requestedBy: string;
  requestedAtMs: number;
  holder: string;
  attempt: number;
  plan: JobPlan;
  chunksDone: number;
  chunksTotal: number;
  offsetsDone: number;
  offsetsTotal: number;
  rowsIn: number;
  inserted: number;
  result: ReplayResult | DeadLetterReplay | null;
  error: string;
  updatedAt: string;
}

/** A job as the API and the CLI report it. */
export interface ReplayJobStatus {
  jobId: string;
  pipeline: string;
  kind: JobKind;
  state: JobState;
  requestedBy: string;
  requestedAt: string;
  updatedAt: string;
  /** who runs (or last ran) it; null while queued for the first time */
  holder: string | null;
  attempt: number;
  progress: {
    chunksDone: number;
    chunksTotal: number;
    offsetsDone: number;
    offsetsTotal: number;
    rowsIn: number;
    inserted: number;
    /** offsets of the planned ranges done, 0-100 */
    percent: number;
  };
  /** the last failure: why it failed, or why it is queued again */
  error: string | null;
  /** the replay's or dead-letter replay's result, once done */
  result: Record<string, unknown> | null;
}

/** Claims of a job after which a retryable failure fails it. */
export const MAX_ATTEMPTS = 5;

export const isClosed = (s: JobState): boolean => s === 'done' || s === 'failed';

/** Who runs jobs in this process when it is a command, not a daemon: named like the command lease's owners. */
export function commandRunner(): string {
  return `cli:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/**
 * The configuration a job's SQL depends on (columns, key, window, time): a
 * runner whose own differs would validate or deduplicate otherwise than the
 * requester expects, so it fails the job instead of running it.
 */
export function configFingerprint(p: PipelineConfig): string {
  return createHash('sha256')
    .update(JSON.stringify({ columns: p.columns, dedup: p.dedup }))
    .digest('hex')
    .slice(0, 16);
}

export function jobStatus(j: ReplayJob): ReplayJobStatus {
  const percent =
    j.offsetsTotal > 0 ? Math.floor((100 * j.offsetsDone) / j.offsetsTotal) : j.state === 'done' ? 100 : 0;
  return {
    jobId: j.jobId,
    pipeline: j.pipeline,
    kind: j.kind,
    state: j.state,
    requestedBy: j.requestedBy,
    requestedAt: new Date(j.requestedAtMs).toISOString(),
    updatedAt: j.updatedAt,
    holder: j.holder === '' ? null : j.holder,
    attempt: j.attempt,
    progress: {
      chunksDone: j.chunksDone,
      chunksTotal: j.chunksTotal,
      offsetsDone: j.offsetsDone,
      offsetsTotal: j.offsetsTotal,
      rowsIn: j.rowsIn,
      inserted: j.inserted,
      percent: j.state === 'done' ? 100 : Math.min(99, percent),
    },
    error: j.error === '' ? null : j.error,
    result: j.result as Record<string, unknown> | null,
  };
}

/** One line for a terminal or a log: state and progress. */
export function describeJob(s: ReplayJobStatus): string {
  const p = s.progress;
  const what =
    s.state === 'queued'
      ? 'queued'
      : s.state === 'running' && p.chunksTotal === 0
        ? 'planning'
        : `chunk ${p.chunksDone}/${p.chunksTotal}, ${p.offsetsDone}/${p.offsetsTotal} offsets (${p.percent}%), ` +
          `${p.rowsIn} rows, ${p.inserted} inserted`;
  return (
    `job ${s.jobId} ${s.state === 'queued' || s.state === 'running' ? '' : `${s.state}: `}${what}` +
    (s.error ? ` (last error: ${s.error})` : '')
  );
}

interface JobRow {
  pipeline: string;
  job_id: string;
  rev: number;
  kind: JobKind;
  state: JobState;
  request: string;
  requested_by: string;
  requested_ms: string;
  holder: string;
  attempt: number;
  plan: string;
  chunks_done: number;
  chunks_total: number;
  offsets_done: string;
  offsets_total: string;
  rows_in: string;
  inserted: string;
  result: string;
  error: string;
  updated_at: string;
}

const COLUMNS = `pipeline, job_id, rev, kind, state, request, requested_by,
       toUnixTimestamp64Milli(requested_at) AS requested_ms, holder, attempt, plan, chunks_done, chunks_total,
       offsets_done, offsets_total, rows_in, inserted, result, error, updated_at`;

/** The statements on winnow_replay_jobs (of `database`), one builder each; values go as parameters. */
export const replayJobsSql = {
  /** One revision of a job (its deduplication token is `replayJobToken`). */
  write(database: string, j: ReplayJob): ParamSql {
    return {
      sql: `INSERT INTO ${qualified(database, REPLAY_JOBS_TABLE)}
       (pipeline, job_id, rev, kind, state, request, requested_by, requested_at, holder, attempt, plan,
        chunks_done, chunks_total, offsets_done, offsets_total, rows_in, inserted, result, error)
       VALUES ({p:String}, {id:String}, {rev:UInt32}, {kind:String}, {state:String}, {request:String}, {by:String},
               fromUnixTimestamp64Milli({at:Int64}), {holder:String}, {attempt:UInt32}, {plan:String},
               {cd:UInt32}, {ct:UInt32}, {od:UInt64}, {ot:UInt64}, {ri:UInt64}, {ins:UInt64},
               {result:String}, {error:String})`,
      params: {
        p: j.pipeline,
        id: j.jobId,
        rev: j.rev,
        kind: j.kind,
        state: j.state,
        request: JSON.stringify(j.request),
        by: j.requestedBy,
        at: j.requestedAtMs,
        holder: j.holder,
        attempt: j.attempt,
        plan: JSON.stringify(j.plan),
        cd: j.chunksDone,
        ct: j.chunksTotal,
        od: j.offsetsDone,
        ot: j.offsetsTotal,
        ri: j.rowsIn,
        ins: j.inserted,
        result: j.result === null ? '' : JSON.stringify(j.result),
        error: j.error,
      },
    };
  },

  /** The job's newest revision, or (with `rev`) the row that revision kept. */
  read(database: string, pipeline: string, jobId: string, rev?: number): ParamSql {
    return {
      sql: `SELECT ${COLUMNS} FROM ${qualified(database, REPLAY_JOBS_TABLE)}
       WHERE pipeline = {p:String} AND job_id = {id:String}${rev === undefined ? '' : ' AND rev = {rev:UInt32}'}
       ORDER BY rev DESC, updated_at, holder LIMIT 1`,
      params: { p: pipeline, id: jobId, ...(rev === undefined ? {} : { rev }) },
    };
  },

  /** The newest revision of the pipeline's newest `limit` jobs, newest first. */
  recent(database: string, pipeline: string, limit: number): ParamSql {
    return {
      sql: `SELECT ${COLUMNS} FROM ${qualified(database, REPLAY_JOBS_TABLE)} WHERE pipeline = {p:String}
       ORDER BY requested_at DESC, job_id, rev DESC, updated_at, holder LIMIT 1 BY job_id LIMIT {limit:UInt32}`,
      params: { p: pipeline, limit },
    };
  },

  /** The oldest job of the pipeline still queued or running. */
  nextOpen(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT job_id FROM ${qualified(database, REPLAY_JOBS_TABLE)} WHERE pipeline = {p:String}
       GROUP BY job_id HAVING argMax(state, rev) IN ('queued', 'running')
       ORDER BY min(requested_at), job_id LIMIT 1`,
      params: { p: pipeline },
    };
  },
};

export const replayJobToken = (j: Pick<ReplayJob, 'pipeline' | 'jobId' | 'rev'>): string =>
  `replay-job:${j.pipeline}:${j.jobId}:${j.rev}`;

function fromRow(r: JobRow): ReplayJob {
  return {
    pipeline: r.pipeline,
    jobId: r.job_id,
    rev: Number(r.rev),
    kind: r.kind,
    state: r.state,
    request: JSON.parse(r.request) as JobRequest,
    requestedBy: r.requested_by,
    requestedAtMs: Number(r.requested_ms),
    holder: r.holder,
    attempt: Number(r.attempt),
    plan: (r.plan === '' ? {} : JSON.parse(r.plan)) as JobPlan,
    chunksDone: Number(r.chunks_done),
    chunksTotal: Number(r.chunks_total),
    offsetsDone: Number(r.offsets_done),
    offsetsTotal: Number(r.offsets_total),
    rowsIn: Number(r.rows_in),
    inserted: Number(r.inserted),
    result: r.result === '' ? null : (JSON.parse(r.result) as ReplayResult | DeadLetterReplay),
    error: r.error,
    updatedAt: new Date(`${r.updated_at.replace(' ', 'T')}Z`).toISOString(),
  };
}

/** True for the error of a database that has no winnow_replay_jobs yet (migrated by an older winnow). */
export function isMissingJobsTable(err: unknown): boolean {
  return err instanceof ClickHouseFailure && err.chCode === CH.UNKNOWN_TABLE && err.message.includes(REPLAY_JOBS_TABLE);
}

/** The jobs of one pipeline in winnow_replay_jobs. */
export class ReplayJobs {
  constructor(
    private readonly db: Db,
    private readonly p: PipelineConfig,
  ) {}

  /** Queues a job; anyone holding the pipeline runs it. */
  async enqueue(request: JobRequest, requestedBy: string): Promise<ReplayJob> {
    const job: ReplayJob = {
      pipeline: this.p.name,
      jobId: newReplayId(request.kind === 'replay' ? 'replay' : 'deadletters'),
      rev: 0,
      kind: request.kind,
      state: 'queued',
      request,
      requestedBy,
      requestedAtMs: Date.now(),
      holder: '',
      attempt: 0,
      plan: {},
      chunksDone: 0,
      chunksTotal: 0,
      offsetsDone: 0,
      offsetsTotal: 0,
      rowsIn: 0,
      inserted: 0,
      result: null,
      error: '',
      updatedAt: '',
    };
    const w = replayJobsSql.write(this.p.sink.database, job);
    await this.db.command(w.sql, w.params, tokenInsert(replayJobToken(job)));
    const back = await this.get(job.jobId);
    if (!back)
      throw new WinnowError('CLICKHOUSE', `replay job ${job.jobId} was written but cannot be read back`, {
        retryable: true,
      });
    return back;
  }

  async get(jobId: string, rev?: number): Promise<ReplayJob | undefined> {
    const q = replayJobsSql.read(this.p.sink.database, this.p.name, jobId, rev);
    const rows = await this.db.rows<JobRow>(q.sql, q.params);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }

  /** The newest `limit` jobs as they are now, newest first; none where the table does not exist yet. */
  async recent(limit: number): Promise<ReplayJob[]> {
    const q = replayJobsSql.recent(this.p.sink.database, this.p.name, limit);
    try {
      return (await this.db.rows<JobRow>(q.sql, q.params)).map(fromRow);
    } catch (err) {
      if (isMissingJobsTable(err)) return [];
      throw err;
    }
  }

  /** The oldest job still queued or running: jobs run one at a time, in the order asked. */
  async nextOpen(): Promise<ReplayJob | undefined> {
    const q = replayJobsSql.nextOpen(this.p.sink.database, this.p.name);
    const rows = await this.db.rows<{ job_id: string }>(q.sql, q.params);
    return rows[0] ? this.get(rows[0].job_id) : undefined;
  }

  /**
   * Writes the job's next revision as `holder` and reads back the row that
   * revision kept: the job as it is now, or CONFLICT when another runner wrote
   * that revision first (this one must stop: the other has the job).
   */
  async advance(job: ReplayJob, change: Partial<ReplayJob>, holder: string): Promise<ReplayJob> {
    const next: ReplayJob = { ...job, ...change, rev: job.rev + 1, holder };
    const w = replayJobsSql.write(this.p.sink.database, next);
    await this.db.command(w.sql, w.params, tokenInsert(replayJobToken(next)));
    const back = await this.get(next.jobId, next.rev);
    if (back?.holder !== holder) {
      throw new WinnowError('CONFLICT', `replay job ${job.jobId}: ${back?.holder ?? 'another runner'} runs it now`);
    }
    return back;
  }
}

export interface JobRunnerOptions {
  db: Db;
  pipeline: PipelineConfig;
  /** who runs: the daemon's lease owner, or commandRunner() */
  owner: string;
  /** Kafka, for a replay from a timestamp and for rewinds; undefined when unreachable */
  admin: () => Promise<Admin | undefined>;
  /** renews the lease while a rewind waits; false: stop, the next holder resumes */
  keepLease: () => Promise<boolean>;
  /** progress lines of a rewind */
  progress?: (line: string) => void;
  /** fault tests: called once a chunk (1-based) is inserted and recorded, before the job says so */
  afterChunk?: (chunk: number) => void;
}

/** Runs jobs, one step at a time; the caller holds the lease before each step. */
export class ReplayJobRunner {
  readonly jobs: ReplayJobs;
  private readonly fingerprint: string;

  constructor(private readonly o: JobRunnerOptions) {
    this.jobs = new ReplayJobs(o.db, o.pipeline);
    this.fingerprint = configFingerprint(o.pipeline);
  }

  get owner(): string {
    return this.o.owner;
  }

  private async replayer(): Promise<Replayer> {
    return new Replayer(this.o.db, this.o.pipeline, await this.o.admin(), this.o.progress, this.o.keepLease);
  }

  /** One step of `job` (claim, plan, one chunk, or finish), written as its next revision: the job as it is now. */
  async step(job: ReplayJob): Promise<ReplayJob> {
    const { db, pipeline: p } = this.o;
    const advance = (change: Partial<ReplayJob>): Promise<ReplayJob> => this.jobs.advance(job, change, this.owner);
    if (isClosed(job.state)) return job;
    if (job.state === 'queued' || job.holder !== this.owner) {
      if (job.request.fingerprint !== this.fingerprint) {
        return advance({
          state: 'failed',
          error:
            `${this.owner} runs pipeline ${p.name} with other columns or dedup settings ` +
            'than the configuration the job was asked with: ' +
            'run it with that configuration (restart the daemon with it), then ask again',
        });
      }
      // Claimed: queued, or left running by a runner that died or lost the lease.
      return advance({ state: 'running', attempt: job.attempt + 1 });
    }
    const req = job.request;
    if (req.kind === 'deadletters' && !job.plan.deadLetters) {
      // Stored before the re-ingest forgets the dead letters, so a resumed job still replays them.
      return advance({ plan: { deadLetters: await planDeadLetterReplay(db, p, req.which) } });
    }
    if (!job.plan.replay) {
      // A rewind is recorded in the job before the queue is touched (a resumed plan redoes it).
      let current = job;
      const opts = {
        ...(job.plan.rewind ? { rewind: job.plan.rewind } : {}),
        onRewind: async (rewind: RewindState): Promise<void> => {
          current = await this.jobs.advance(current, { plan: { ...current.plan, rewind } }, this.owner);
        },
      };
      const replayer = await this.replayer();
      let plan: ReplayPlan;
      if (req.kind === 'deadletters') {
        await reingestDeadLetters(db, p, req.which);
        const bounds = job.plan.deadLetters?.replay;
        const offsets = (o: OffsetSpec[]): ReplayBound => ({ kind: 'offsets', offsets: o });
        plan = bounds
          ? await replayer.plan({ from: offsets(bounds.from), to: offsets(bounds.to) }, opts)
          : { ranges: [], chunkRows: p.schedule.maxSliceRows, rewound: [] };
      } else {
        plan = await replayer.plan({ from: req.from, ...(req.to ? { to: req.to } : {}) }, opts);
      }
      return this.jobs.advance(
        current,
        {
          plan: { ...current.plan, replay: plan },
          chunksTotal: chunk(plan.ranges, plan.chunkRows).length,
          offsetsTotal: offsetsIn(plan.ranges),
        },
        this.owner,
      );
    }
    const planned = job.plan.replay;
    if (job.chunksDone < job.chunksTotal) {
      const c = chunk(planned.ranges, planned.chunkRows)[job.chunksDone] ?? [];
      const reason = req.kind === 'deadletters' ? 'dead letters' : `replay: ${job.requestedBy}`;
      const r = await (await this.replayer()).runChunk(job.jobId, job.chunksDone, c, reason);
      this.o.afterChunk?.(job.chunksDone + 1);
      return advance({
        chunksDone: job.chunksDone + 1,
        offsetsDone: job.offsetsDone + offsetsIn(c),
        rowsIn: job.rowsIn + r.rowsIn,
        inserted: job.inserted + r.inserted,
      });
    }
    const replay: ReplayResult = {
      replayId: job.jobId,
      ranges: planned.ranges,
      chunks: job.chunksTotal,
      rowsIn: job.rowsIn,
      inserted: job.inserted,
      duplicates: job.rowsIn - job.inserted,
      rewound: planned.rewound,
    };
    if (req.kind === 'replay') return advance({ state: 'done', result: replay, error: '' });
    const dl = job.plan.deadLetters;
    if (!dl) throw new WinnowError('INTERNAL', `replay job ${job.jobId}: a dead-letter job without its plan`);
    await forgetReplayedRefusals(db, p, dl.refused);
    return advance({ state: 'done', result: deadLetterOutcome(dl, dl.replay ? replay : null), error: '' });
  }

  /**
   * Records a step that failed: queued again while it may succeed on a retry
   * and attempts remain, failed otherwise. A CONFLICT (another runner has the
   * job, or the lease was lost) is not this runner's to record: rethrown.
   */
  async failed(job: ReplayJob, err: unknown): Promise<ReplayJob> {
    if (err instanceof WinnowError && err.code === 'CONFLICT') throw err;
    // The step may have written revisions before it failed (a rewind is recorded): record on the newest.
    const fresh = (await this.jobs.get(job.jobId)) ?? job;
    if (fresh.holder !== this.owner || isClosed(fresh.state)) {
      throw new WinnowError('CONFLICT', `replay job ${job.jobId}: ${fresh.holder || 'another runner'} has it now`);
    }
    job = fresh;
    const retryable =
      err instanceof WinnowError ? err.retryable || err.code === 'KAFKA' || err.code === 'NOT_READY' : true;
    const again = retryable && job.attempt < MAX_ATTEMPTS;
    return this.jobs.advance(job, { state: again ? 'queued' : 'failed', error: describeError(err) }, this.owner);
  }

  /**
   * Runs `job` to its end in this process (a command holding the command
   * lease): a step only while keepLease() says the lease is held. Returns the
   * job as it stands when done, failed, or left for the next holder.
   */
  async runToEnd(job: ReplayJob, onStep: (j: ReplayJob) => void = () => undefined): Promise<ReplayJob> {
    let j = job;
    while (!isClosed(j.state)) {
      if (!(await this.o.keepLease())) return j;
      try {
        j = await this.step(j);
      } catch (err) {
        if (err instanceof WinnowError && err.code === 'CONFLICT') return (await this.jobs.get(j.jobId)) ?? j;
        j = await this.failed(j, err);
        if (j.state === 'queued') await new Promise((r) => setTimeout(r, Math.min(30_000, 1_000 * 2 ** j.attempt)));
      }
      onStep(j);
    }
    return j;
  }
}

/** The daemon's side: between slices, one step of the pipeline's oldest open job. */
export class ReplayJobPoller {
  private current: string | undefined;
  private nextPollAt = 0;
  private retryAt = 0;
  /** why jobs could not be read, as last logged */
  private unavailable: string | undefined;

  constructor(
    private readonly runner: ReplayJobRunner,
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void,
    private readonly pollMs = 1_000,
    /** a job claimed or resumed by this runner, done, or failed for good (the metrics) */
    private readonly onEvent: (event: 'started' | 'done' | 'failed') => void = () => undefined,
  ) {}

  /** Runs one step of an open job; false when there was none to run now. */
  async step(): Promise<boolean> {
    const now = Date.now();
    if (now < this.retryAt) return false;
    let job: ReplayJob | undefined;
    try {
      if (this.current) job = await this.runner.jobs.get(this.current);
      else {
        if (now < this.nextPollAt) return false;
        this.nextPollAt = now + this.pollMs;
        job = await this.runner.jobs.nextOpen();
      }
    } catch (err) {
      // Jobs never fail the slices: a table missing (an older database) or unreadable is reported, then skipped.
      const missing = isMissingJobsTable(err);
      const line = missing ? 'winnow_replay_jobs is missing (run winnow migrate up)' : describeError(err);
      if (line !== this.unavailable) this.log('warn', 'replay jobs unavailable', { error: line });
      this.unavailable = line;
      this.nextPollAt = now + (missing ? 60_000 : 30_000);
      return false;
    }
    this.unavailable = undefined;
    if (!job || isClosed(job.state)) {
      this.current = undefined;
      return false;
    }
    this.current = job.jobId;
    let next: ReplayJob;
    try {
      try {
        next = await this.runner.step(job);
      } catch (err) {
        next = await this.runner.failed(job, err);
        if (next.state === 'queued') {
          this.retryAt = Date.now() + Math.min(30_000, 1_000 * 2 ** next.attempt);
          this.log('warn', 'replay job step failed; retrying', {
            job: next.jobId,
            attempt: next.attempt,
            error: next.error,
          });
        }
      }
    } catch (err) {
      if (!(err instanceof WinnowError && err.code === 'CONFLICT')) {
        // Not even the failure could be recorded (ClickHouse away?): the job stays as it is; tried again later.
        this.retryAt = Date.now() + 30_000;
        this.log('warn', 'replay job step failed and could not be recorded; retrying', {
          job: job.jobId,
          error: describeError(err),
        });
        return false;
      }
      this.current = undefined;
      this.log('warn', 'replay job left to another runner', { job: job.jobId, error: describeError(err) });
      return false;
    }
    this.report(job, next);
    if (isClosed(next.state)) this.current = undefined;
    return true;
  }

  private report(before: ReplayJob, j: ReplayJob): void {
    const fields = { job: j.jobId, kind: j.kind, requestedBy: j.requestedBy, ...jobStatus(j).progress };
    if (j.state === 'failed' || j.state === 'done') this.onEvent(j.state);
    else if (j.state === 'running' && (before.state === 'queued' || before.holder !== j.holder))
      this.onEvent('started');
    if (j.state === 'failed') this.log('error', 'replay job failed', { ...fields, attempt: j.attempt, error: j.error });
    else if (j.state === 'done') this.log('info', 'replay job done', fields);
    else if (j.state === 'running' && (before.state === 'queued' || before.holder !== j.holder)) {
      this.log('info', before.state === 'running' ? 'replay job resumed' : 'replay job claimed', {
        ...fields,
        attempt: j.attempt,
        from: before.holder || null,
      });
    } else if (j.chunksDone !== before.chunksDone || j.chunksTotal !== before.chunksTotal)
      this.log('info', 'replay job progress', fields);
  }
}
