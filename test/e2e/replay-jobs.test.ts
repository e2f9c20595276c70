/**
 * Replays while the daemon runs (operations/replay-jobs.ts): `winnow replay`
 * and `winnow deadletters replay` hand the job to the daemon holding the
 * pipeline and follow its progress; `--no-wait` returns the job id, and the
 * API queues jobs (202) and reports them (GET .../replays/:id). The daemon
 * keeps running throughout: nothing is stopped to replay.
 * Invariants: I5 (a replay over processed data adds exactly the keys that are
 * not represented: here final rows and seen keys deleted on purpose, so the
 * result equals the oracle again), I2 (a fixed dead letter ends in the final
 * table), I4 (the counts reconcile: `winnow check --full` is consistent).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { runCli, startDaemon, type Daemon } from '../support/cli.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const N = 300;

interface Job {
  jobId: string;
  state: string;
  holder: string | null;
  progress: {
    chunksDone: number;
    chunksTotal: number;
    offsetsDone: number;
    offsetsTotal: number;
    rowsIn: number;
    inserted: number;
    percent: number;
  };
  result: { rowsIn: number; inserted: number; chunks: number } | null;
  error: string | null;
}

describe('replays handed to the running daemon', () => {
  const name = uniqueName('rj');
  const topic = uniqueName('rj');
  const env = { WINNOW_LEASE_EPOCH_MS: '2000' };
  let db: string;
  let dir: string;
  let strictFile: string;
  let fixedFile: string;
  let client: Db;
  let daemon: Daemon | undefined;

  const yaml = (emailOptional: boolean): string => {
    const s = servers();
    return `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: email, type: String, path: user_email${emailOptional ? ', optional: true' : ''} }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
    schedule: { maxSliceRows: 40, checkInterval: 1h }
    api: { replayToken: sesame }
`;
  };
  /** The oracle: one row per event id, the first occurrence (every tenth was sent twice, identical). */
  const expected = (extra: string[] = []): string[] =>
    [...Array.from({ length: N }, (_, i) => `${uuid(i)} n${i}`), ...extra].sort();
  const finalRows = async (): Promise<string[]> =>
    (
      await client.rows<{ r: string }>(`SELECT concat(toString(event_id), ' ', name) AS r FROM ${db}.events ORDER BY r`)
    ).map((x) => x.r);
  const pending = async (): Promise<number> => {
    const r = await client.rows<{ n: string }>(
      `SELECT (SELECT uniqExact(_partition, _offset) FROM ${db}.winnow_${name}_staging)
            - (SELECT sum(rows_in) FROM ${db}.winnow_slices WHERE pipeline = {p:String} AND status = 'committed') AS n`,
      { p: name },
    );
    return Number(r[0]?.n ?? -1);
  };
  /** Rows lost on purpose: final rows and their seen keys, so only a replay brings them back. */
  const lose = async (ids: number[]): Promise<void> => {
    const list = ids.map((i) => `'${uuid(i)}'`).join(', ');
    await client.command(`DELETE FROM ${db}.events WHERE event_id IN (${list})`, {}, { mutations_sync: '2' });
    await client.command(
      `DELETE FROM ${db}.winnow_${name}_seen WHERE event_id IN (${list})`,
      {},
      { mutations_sync: '2' },
    );
  };
  const getJob = async (id: string): Promise<Job> => {
    const res = await fetch(`${daemon!.api}/api/v1/pipelines/${name}/replays/${id}`);
    expect(res.status).toBe(200);
    return (await res.json()) as Job;
  };

  beforeAll(async () => {
    db = (await freshDatabase('winnow_rj')).name;
    await createTopic(topic, 2);
    dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-rj-'));
    strictFile = path.join(dir, 'strict.yaml');
    fixedFile = path.join(dir, 'fixed.yaml');
    await writeFile(strictFile, yaml(false));
    await writeFile(fixedFile, yaml(true));
    client = connect({ url: servers().clickhouseUrl });
    // Validation is the migrated one: email required, so the message without it is a dead letter.
    const up = await runCli(['migrate', 'up', '--config', strictFile], env);
    expect(up.code, up.stderr).toBe(0);
    const producer = kafka().producer();
    await producer.connect();
    const messages: { partition: number; value: string }[] = [];
    for (let i = 0; i < N; i++) {
      const v = JSON.stringify({ event_id: uuid(i), user_name: `n${i}`, user_email: `e${i}@x` });
      messages.push({ partition: i % 2, value: v });
      if (i % 10 === 0) messages.push({ partition: i % 2, value: v });
      // One without email in the middle of partition 1: behind the watermark once processed.
      if (i === 101)
        messages.push({ partition: 1, value: JSON.stringify({ event_id: uuid(999), user_name: 'no-email' }) });
    }
    await producer.send({ topic, messages });
    await producer.disconnect();
    // The daemon runs with the fixed configuration (email optional), as it would after the fix.
    daemon = await startDaemon(fixedFile, env);
    await waitFor(
      async () => [await finalRows(), await pending()] as const,
      ([rows, p]) => rows.length === N && p === 0,
      90_000,
      `${N} final rows`,
    );
    expect(await finalRows()).toEqual(expected());
  });

  afterAll(async () => {
    if (daemon) expect(await daemon.stop()).toBe(0);
    await client?.close();
  });

  it('winnow replay hands the replay to the daemon and follows it; the result equals the oracle', async () => {
    await lose([3, 44, 45, 120, 277]);
    expect(await finalRows()).toHaveLength(N - 5);
    const r = await runCli(
      ['replay', '--config', fixedFile, '--from-offsets', `${topic}/0:0,${topic}/1:0`, '--json'],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { jobId: string; inserted: number; rowsIn: number; chunks: number };
    // 331 offsets: 330 staged (300 + 30 sent twice) and the dead letter, in chunks of 40 offsets.
    expect(out).toMatchObject({ inserted: 5, rowsIn: N + 30 });
    expect(out.chunks).toBeGreaterThanOrEqual(8);
    expect(r.stderr).toContain('handed to the daemon holding the pipeline');
    const progress = r.stderr
      .split('\n')
      .filter((l) => /chunk \d+\/\d+, \d+\/\d+ offsets \(\d+%\), \d+ rows, \d+ inserted/.test(l));
    expect(progress.length, r.stderr).toBeGreaterThan(1);
    expect(r.stderr).toContain(`done: chunk ${out.chunks}/${out.chunks}`);
    expect(r.stderr).toContain('(100%)');
    expect(r.stderr).not.toContain('running job');
    expect(await finalRows()).toEqual(expected());
    // The daemon ran it, between its slices, and says so.
    expect(daemon!.logs()).toContain('"msg":"replay job claimed"');
    expect(daemon!.logs()).toMatch(new RegExp(`"msg":"replay job done".*"job":"${out.jobId}"`));
    const job = await getJob(out.jobId);
    expect(job).toMatchObject({
      state: 'done',
      progress: { percent: 100, inserted: 5, rowsIn: N + 30 },
      result: { inserted: 5 },
    });
    expect(job.holder).not.toMatch(/^cli:/);
  });

  it('--no-wait returns a job id at once; GET /replays/:id reports it until done', async () => {
    await lose([7, 150]);
    const r = await runCli(
      ['replay', '--config', fixedFile, '--from-offsets', `${topic}/0:0,${topic}/1:0`, '--no-wait', '--json'],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const queued = JSON.parse(r.stdout) as Job;
    expect(queued).toMatchObject({ state: 'queued', holder: null, progress: { percent: 0 } });
    expect(queued.jobId).toMatch(/^replay-/);
    const seen = new Set<string>();
    const done = await waitFor(
      async () => {
        const j = await getJob(queued.jobId);
        seen.add(`${j.state}:${j.progress.percent}`);
        return j;
      },
      (j) => j.state === 'done' || j.state === 'failed',
      60_000,
      `job ${queued.jobId} to finish`,
    );
    expect(done).toMatchObject({
      state: 'done',
      error: null,
      progress: { percent: 100, inserted: 2 },
      result: { inserted: 2 },
    });
    expect(done.progress.chunksDone).toBe(done.progress.chunksTotal);
    expect(done.progress.offsetsDone).toBe(done.progress.offsetsTotal);
    expect(await finalRows()).toEqual(expected());
  });

  it('POST /replay answers 202 with the job; GET follows it to done', async () => {
    await lose([11]);
    const res = await fetch(`${daemon!.api}/api/v1/pipelines/${name}/replay`, {
      method: 'POST',
      headers: { authorization: 'Bearer sesame', 'content-type': 'application/json' },
      body: JSON.stringify({ fromOffsets: `${topic}/1:0`, to: `${topic}/1:60` }),
    });
    expect(res.status).toBe(202);
    const job = (await res.json()) as Job;
    expect(res.headers.get('location')).toBe(`/api/v1/pipelines/${name}/replays/${job.jobId}`);
    const done = await waitFor(
      () => getJob(job.jobId),
      (j) => j.state === 'done' || j.state === 'failed',
      60_000,
      'the API job',
    );
    // uuid(11) is on partition 1 at offset 6 or so: within 1:0-1:60.
    expect(done).toMatchObject({ state: 'done', progress: { inserted: 1, offsetsTotal: 61 } });
    expect(await finalRows()).toEqual(expected());
    const missing = await fetch(`${daemon!.api}/api/v1/pipelines/${name}/replays/replay-nope`);
    expect(missing.status).toBe(404);
  });

  it('deadletters replay is handed over too: the daemon stages the fixed dead letter and deduplicates it', async () => {
    // Asked with a configuration other than the daemon's: refused, nothing changes.
    const wrong = await runCli(['deadletters', 'replay', '--config', strictFile, '--all'], env);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('with other columns or dedup settings');
    expect(await finalRows()).toEqual(expected());

    const r = await runCli(['deadletters', 'replay', '--config', fixedFile, '--all', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      jobId: string;
      selected: number;
      reingested: number;
      waitingForSlice: number;
      replay: { inserted: number };
    };
    expect(out).toMatchObject({ selected: 1, reingested: 1, waitingForSlice: 0, replay: { inserted: 1 } });
    expect(out.jobId).toMatch(/^deadletters-/);
    expect(r.stderr).toContain('handed to the daemon holding the pipeline');
    expect(await finalRows()).toEqual(expected([`${uuid(999)} no-email`]));
    const left = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.winnow_${name}_errors`);
    expect(Number(left[0]?.n)).toBe(0);
  });

  it('the counts reconcile: each replayed chunk is recorded once; replays account for the rows they add', async () => {
    const chunks = await client.rows<{ n: string; d: string }>(
      `SELECT count() AS n, uniqExact(replay_id, chunk) AS d FROM ${db}.winnow_replays WHERE pipeline = {p:String}`,
      { p: name },
    );
    expect(Number(chunks[0]?.n)).toBe(Number(chunks[0]?.d));
    // Report only (the daemon holds the pipeline). The 8 rows deleted by hand are the only difference.
    const check = await runCli(['check', '--config', fixedFile, '--full', '--json'], env);
    expect([0, 4], check.stderr).toContain(check.code);
    const report = (JSON.parse(check.stdout) as { reports: Record<string, { ok: boolean } & Record<string, number>>[] })
      .reports[0]!;
    expect(report).toMatchObject({
      uniqueness: { ok: true },
      doubled: { ok: true },
      completeness: { ok: true },
      seenVsFinal: { ok: true },
    });
    expect(report['counts']).toMatchObject({ finalRows: N + 1, insertedBySlices: N, insertedByReplays: 9 });
  });
});
