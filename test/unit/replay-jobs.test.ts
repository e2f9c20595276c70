/**
 * Replay jobs without a server: how a job reads (state, progress, percent),
 * the configuration fingerprint a runner compares, and the compare-and-set of
 * a revision (a runner whose row did not survive stops with CONFLICT).
 */
import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/clickhouse/client.ts';
import { validateConfig } from '../../src/config/index.ts';
import { WinnowError } from '../../src/errors.ts';
import {
  configFingerprint,
  describeJob,
  jobStatus,
  ReplayJobs,
  type ReplayJob,
} from '../../src/operations/replay-jobs.ts';

const config = (email: Record<string, unknown> = {}) =>
  validateConfig(
    {
      pipelines: [
        {
          name: 'users',
          source: { brokers: ['k:9092'], topics: ['users'] },
          columns: [
            { name: 'event_id', type: 'UUID' },
            { name: 'email', type: 'String', ...email },
          ],
          dedup: { window: '1h' },
          sink: { table: 'users' },
        },
      ],
    },
    'test',
    {},
  ).pipelines[0]!;

const job: ReplayJob = {
  pipeline: 'users',
  jobId: 'replay-x-1',
  rev: 3,
  kind: 'replay',
  state: 'running',
  request: {
    kind: 'replay',
    from: { kind: 'offsets', offsets: [{ topic: undefined, partition: 0, offset: 0 }] },
    fingerprint: 'f',
  },
  requestedBy: 'api',
  requestedAtMs: Date.UTC(2026, 10, 27, 10),
  holder: 'vm:1:a',
  attempt: 1,
  plan: {},
  chunksDone: 3,
  chunksTotal: 4,
  offsetsDone: 999,
  offsetsTotal: 1000,
  rowsIn: 990,
  inserted: 7,
  result: null,
  error: '',
  updatedAt: '2026-11-27T10:00:01.000Z',
};

describe('replay jobs', () => {
  it('report progress in offsets of the planned ranges; 100% only once done', () => {
    const s = jobStatus(job);
    expect(s).toMatchObject({
      state: 'running',
      holder: 'vm:1:a',
      error: null,
      requestedAt: '2026-11-27T10:00:00.000Z',
    });
    expect(s.progress).toEqual({
      chunksDone: 3,
      chunksTotal: 4,
      offsetsDone: 999,
      offsetsTotal: 1000,
      rowsIn: 990,
      inserted: 7,
      percent: 99,
    });
    expect(describeJob(s)).toBe('job replay-x-1 chunk 3/4, 999/1000 offsets (99%), 990 rows, 7 inserted');
    const done = jobStatus({ ...job, state: 'done', chunksDone: 4, offsetsDone: 1000 });
    expect(done.progress.percent).toBe(100);
    expect(describeJob(done)).toBe('job replay-x-1 done: chunk 4/4, 1000/1000 offsets (100%), 990 rows, 7 inserted');
    const empty = jobStatus({ ...job, state: 'done', chunksDone: 0, chunksTotal: 0, offsetsDone: 0, offsetsTotal: 0 });
    expect(empty.progress.percent).toBe(100);
    const queued = jobStatus({
      ...job,
      state: 'queued',
      holder: '',
      chunksDone: 0,
      chunksTotal: 0,
      offsetsDone: 0,
      offsetsTotal: 0,
    });
    expect(queued).toMatchObject({ holder: null, progress: { percent: 0 } });
    expect(describeJob(queued)).toBe('job replay-x-1 queued');
    expect(describeJob(jobStatus({ ...job, state: 'queued', error: 'ClickHouse down' }))).toContain(
      '(last error: ClickHouse down)',
    );
    expect(describeJob(jobStatus({ ...job, chunksTotal: 0 }))).toBe('job replay-x-1 planning');
  });

  it('fingerprint the columns and dedup settings, not the rest of the configuration', () => {
    const a = config();
    expect(configFingerprint(a)).toBe(configFingerprint(config()));
    expect(configFingerprint(a)).not.toBe(configFingerprint(config({ optional: true })));
    expect(configFingerprint(a)).toBe(configFingerprint({ ...a, schedule: { ...a.schedule, maxSliceRows: 7 } }));
  });

  it('write a revision with its token and read it back: a row written by another runner means CONFLICT', async () => {
    const written: { sql: string; params: Record<string, unknown>; settings: Record<string, unknown> }[] = [];
    let holderOfRev = 'me';
    const db = {
      url: 'http://x',
      command: (sql: string, params: Record<string, unknown> = {}, settings: Record<string, unknown> = {}) => {
        written.push({ sql, params, settings });
        return Promise.resolve({ readRows: 0, writtenRows: 1, elapsedMs: 0, memoryBytes: 0 });
      },
      rows: <T>(_sql: string, params: Record<string, unknown> = {}) =>
        Promise.resolve([
          {
            pipeline: 'users',
            job_id: job.jobId,
            rev: params['rev'],
            kind: 'replay',
            state: 'running',
            request: JSON.stringify(job.request),
            requested_by: 'api',
            requested_ms: String(job.requestedAtMs),
            holder: holderOfRev,
            attempt: 2,
            plan: '',
            chunks_done: 3,
            chunks_total: 4,
            offsets_done: '999',
            offsets_total: '1000',
            rows_in: '990',
            inserted: '7',
            result: '',
            error: '',
            updated_at: '2026-11-27 10:00:02.000',
          },
        ] as T[]),
      ping: () => Promise.resolve(true),
      close: () => Promise.resolve(),
    } satisfies Db;
    const jobs = new ReplayJobs(db, config());
    const next = await jobs.advance(job, { attempt: 2 }, 'me');
    expect(next).toMatchObject({ rev: 4, holder: 'me', attempt: 2, updatedAt: '2026-11-27T10:00:02.000Z' });
    expect(written[0]?.params).toMatchObject({ rev: 4, holder: 'me', id: job.jobId });
    expect(written[0]?.settings).toMatchObject({
      insert_deduplication_token: `replay-job:users:${job.jobId}:4`,
      deduplicate_insert: 'enable',
    });
    holderOfRev = 'someone else';
    await expect(jobs.advance(next, {}, 'me')).rejects.toThrow(WinnowError);
    await expect(jobs.advance(next, {}, 'me')).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
