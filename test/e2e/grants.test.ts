/**
 * Least privilege on a real server: the pipeline run by users holding only the
 * grants of README "Grants" (src/provisioning/grants.ts), made by the global
 * setup in the embedded server's users.xml (it takes no SQL CREATE USER) for a
 * database and pipeline chosen there; servers of your own (the env variables)
 * and testcontainers have no such users, and the test is skipped.
 *
 * winnow_migrate migrates (and again, on the existing database: no CREATE
 * DATABASE needed); winnow_run runs the daemon while the producer sends, its
 * checks, a replay through the API, a replay that rewinds the Kafka engine
 * (DETACH and ATTACH of the queue), a check that repairs a doubled slice
 * (DELETE) and drops an expired seen-key partition, a dead-letter replay
 * (DELETE); winnow_read reads the stats, the dead letters and the migration
 * status. The final table ends exact. A user without a grant gets an error
 * that names the grant.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { runCli, startDaemon, type CliResult, type Daemon } from '../support/cli.ts';
import { createTopic, kafka, servers, uniqueName, waitFor, type RestrictedUsers } from '../support/helpers.ts';

const restricted = servers().restricted;

describe.runIf(restricted)('least privilege: the pipeline run by users with only the grants README names', () => {
  const r = restricted as RestrictedUsers;
  const s = servers();
  const topic = uniqueName('grants');
  const env = { WINNOW_LEASE_EPOCH_MS: '2000' };
  const q = (t: string): string => `${r.database}.${t}`;
  let dir: string;
  let admin: Db;
  let daemon: Daemon | undefined;

  /** The pipeline as `role` runs it (sink.user); `fixed`: column n made optional, to re-ingest a dead letter. */
  async function config(role: keyof RestrictedUsers['users'], fixed = false): Promise<string> {
    const file = path.join(dir, `${role}${fixed ? '-fixed' : ''}.yaml`);
    await writeFile(
      file,
      `pipelines:
  - name: ${r.pipeline}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: String }
      - { name: n, type: UInt32${fixed ? ', optional: true' : ''} }
    dedup: { window: 1h }
    sink:
      url: ${s.clickhouseUrl}
      user: ${r.users[role].name}
      password: { env: TEST_CLICKHOUSE_PASSWORD }
      database: ${r.database}
      table: events
    schedule: { interval: 200ms, maxSliceRows: 60, checkInterval: 2s }
    api: { replayToken: grants-token }
`,
    );
    return file;
  }
  const as = (role: keyof RestrictedUsers['users']): Record<string, string> => ({
    ...env,
    TEST_CLICKHOUSE_PASSWORD: r.users[role].password,
  });
  const cli = async (role: keyof RestrictedUsers['users'], args: string[], fixed = false): Promise<CliResult> =>
    runCli([...args, '--config', await config(role, fixed)], as(role));
  const num = async (sql: string): Promise<number> => Number((await admin.rows<{ n: string }>(sql))[0]?.n ?? 0);
  const finalRows = async (): Promise<string[]> =>
    (
      await admin.rows<{ r: string }>(`SELECT concat(event_id, '=', toString(n)) AS r FROM ${q('events')} ORDER BY r`)
    ).map((x) => x.r);

  // 200 events over 2 partitions, every tenth sent again right after with another n (first wins), one malformed
  // message, one without n (a dead letter until n is made optional).
  const expected = [...Array.from({ length: 200 }, (_, i) => `k${i}=${i}`), 'k-no-n=0'].sort();
  const batch = (from: number, to: number): { partition: number; value: string }[] =>
    Array.from({ length: to - from }, (_, j) => from + j).flatMap((i) => {
      const first = { partition: i % 2, value: JSON.stringify({ event_id: `k${i}`, n: i }) };
      return i % 10 === 0
        ? [first, { partition: i % 2, value: JSON.stringify({ event_id: `k${i}`, n: i + 1000 }) }]
        : [first];
    });
  const send = async (messages: { partition: number; value: string }[]): Promise<void> => {
    const producer = kafka().producer();
    await producer.connect();
    await producer.send({ topic, messages });
    await producer.disconnect();
  };
  const stats = async (d: Daemon): Promise<{ inserted: number; deadLetters: number }> =>
    (await (await fetch(`${d.api}/api/v1/pipelines/${r.pipeline}/stats`)).json()) as {
      inserted: number;
      deadLetters: number;
    };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-grants-'));
    admin = connect({ url: s.clickhouseUrl });
    await createTopic(topic, 2);
  });

  afterAll(async () => {
    if (daemon) await daemon.stop();
    await admin?.close();
  });

  it('migrates as winnow_migrate: CREATE DATABASE needed only while the database is missing', async () => {
    // The pre-flight names it (CHECK GRANT), before anything is created.
    const missing = await cli('migrate', ['migrate', 'up']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`lacks CREATE DATABASE ON \`${r.database}\`.*, needed for migrate up`);
    expect(missing.stderr).toContain('README "Grants"');

    await admin.command(`CREATE DATABASE ${r.database}`);
    const dry = await cli('migrate', ['migrate', 'up', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).not.toContain('CREATE DATABASE');
    for (const expectOut of ['applied 0001_slices', 'up to date']) {
      const up = await cli('migrate', ['migrate', 'up']);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout).toContain(expectOut);
    }
    const status = await cli('read', ['migrate', 'status']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).not.toContain('pending');
  });

  it('refuses DDL to winnow_run with an error naming the grant', async () => {
    const up = await cli('run', ['migrate', 'up']);
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(/"winnow_run": lacks .*CREATE TABLE ON `[^`]+`\.\*, .*needed for migrate up/);
  });

  it('runs the daemon as winnow_run while the producer sends: every event once, first wins', async () => {
    await send(batch(0, 100));
    daemon = await startDaemon(await config('run'), as('run'));
    await send([
      ...batch(100, 200),
      { partition: 0, value: '{"event_id": "k-bad", "n": ' },
      { partition: 1, value: JSON.stringify({ event_id: 'k-no-n' }) },
    ]);
    await waitFor(
      () => stats(daemon!),
      (x) => x.inserted === 200 && x.deadLetters === 2,
      120_000,
      'every message processed',
    );
    // The daemon's scheduled check ran as winnow_run too, and found everything consistent.
    await waitFor(
      async () => {
        const res = await fetch(`${daemon!.api}/api/v1/pipelines/${r.pipeline}/consistency`);
        return ((await res.json()) as { report: { ok: boolean; counts: { finalRows: number } } | null }).report;
      },
      (rep) => rep?.ok === true && rep.counts.finalRows === 200,
      60_000,
      'a consistent check of 200 rows',
    );
    // A replay through the API, a job the daemon runs (winnow_replay_jobs): over processed data it adds nothing.
    const replay = await fetch(`${daemon.api}/api/v1/pipelines/${r.pipeline}/replay`, {
      method: 'POST',
      headers: { authorization: 'Bearer grants-token', 'content-type': 'application/json' },
      body: JSON.stringify({ fromOffsets: '0:0,1:0' }),
    });
    expect(replay.status).toBe(202);
    const { jobId } = (await replay.json()) as { jobId: string };
    const job = await waitFor(
      async () => {
        const res = await fetch(`${daemon!.api}/api/v1/pipelines/${r.pipeline}/replays/${jobId}`);
        return (await res.json()) as { state: string; error: string | null; result: { inserted: number } | null };
      },
      (j) => j.state === 'done' || j.state === 'failed',
      60_000,
      'the API replay job',
    );
    expect(job).toMatchObject({ state: 'done', error: null, result: { inserted: 0 } });
    expect(await daemon.stop()).toBe(0);
    daemon = undefined;
    expect(await finalRows()).toEqual(expected.filter((x) => x !== 'k-no-n=0'));
  });

  it('replays as winnow_run, rewinding the Kafka engine where staging lost the range (DETACH, ATTACH)', async () => {
    const before = await finalRows();
    await admin.command(
      `DELETE FROM ${q(`winnow_${r.pipeline}_staging`)} WHERE _partition = 1 AND _offset < 20`,
      {},
      { mutations_sync: '2' },
    );
    // Once the stopped daemon's lease has expired.
    const replay = await waitFor(
      () => cli('run', ['replay', '--from-offsets', `${topic}/1:0`, '--json']),
      (x) => !x.stderr.includes('is run by a daemon'),
      30_000,
      'the lease of the stopped daemon to expire',
    );
    expect(replay.code, replay.stderr).toBe(0);
    const result = JSON.parse(replay.stdout) as { inserted: number; rewound: unknown[] };
    expect(result.rewound).toEqual([{ topic, partition: 1, offset: 0 }]);
    expect(result.inserted).toBe(0);
    expect(await finalRows()).toEqual(before);
  });

  it('checks as winnow_run: repairs a doubled slice (DELETE) and drops an expired seen-key partition', async () => {
    const before = await finalRows();
    const slice = (
      await admin.rows<{ id: string }>(
        `SELECT slice_id AS id FROM ${q('winnow_slices')}
         WHERE pipeline = {p:String} AND status = 'committed' AND inserted > 0 ORDER BY seq DESC LIMIT 1`,
        { p: r.pipeline },
      )
    )[0]!.id;
    // The slice's kept rows once more through the dedup entry point, as a doubled insert writes them.
    await admin.command(
      `INSERT INTO ${q(`winnow_${r.pipeline}_kept`)} (event_id, n, __t, __slice)
       SELECT f.event_id, f.n, s.__t, s.__slice FROM ${q(`winnow_${r.pipeline}_seen`)} AS s
       INNER JOIN ${q('events')} AS f USING (event_id) WHERE s.__slice = {slice:String}`,
      { slice },
      { insert_deduplicate: 0, deduplicate_blocks_in_dependent_materialized_views: 0 },
    );
    expect(await num(`SELECT count() AS n FROM ${q('events')}`)).toBeGreaterThan(200);
    // A seen key from long ago in a partition of its own, written so that it expires (2 h after its write time)
    // 3 s from now (expired rows are not written at all), with TTL merges stopped, as when they lag behind.
    const seen = q(`winnow_${r.pipeline}_seen`);
    await admin.command(`SYSTEM STOP TTL MERGES ${seen}`);
    await admin.command(
      `INSERT INTO ${seen} (event_id, __t, __slice, __at)
       VALUES ('k1', now64(3) - INTERVAL 10 DAY, 'long-gone', now() - INTERVAL 7197 SECOND)`,
    );
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    expect(await num(`SELECT count() AS n FROM ${seen} WHERE __slice = 'long-gone'`)).toBe(1);
    const check = await cli('run', ['check', '--full', '--json']);
    expect(check.code, check.stderr).toBe(0);
    interface Report {
      ok: boolean;
      doubled: { finalRemoved: number; seenRemoved: number };
      retention: { droppedSeenPartitions: number };
    }
    const report = (JSON.parse(check.stdout) as { reports: Report[] }).reports[0]!;
    expect(report.doubled.finalRemoved).toBeGreaterThan(0);
    expect(report.doubled.seenRemoved).toBe(report.doubled.finalRemoved);
    expect(report.retention.droppedSeenPartitions).toBe(1);
    await admin.command(`SYSTEM START TTL MERGES ${seen}`);
    expect(await num(`SELECT count() AS n FROM ${seen} WHERE __slice = 'long-gone'`)).toBe(0);
    expect(report.ok).toBe(true);
    expect(await finalRows()).toEqual(before);
  });

  it('reads dead letters as winnow_read, re-ingests the fixed one as winnow_run (DELETE); ends exact', async () => {
    const list = await cli('read', ['deadletters', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { total: number }).total).toBe(2);
    const replay = await cli('run', ['deadletters', 'replay', '--all', '--json'], true);
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ selected: 2, reingested: 1, stillFailing: 1 });
    // The next slice takes it (it was behind no watermark: the last message of its partition).
    daemon = await startDaemon(await config('run', true), as('run'));
    await waitFor(
      () => stats(daemon!),
      (x) => x.inserted === 201,
      60_000,
      'the re-ingested message',
    );
    expect(await daemon.stop()).toBe(0);
    daemon = undefined;
    expect(await finalRows()).toEqual(expected);
    const read = await cli('read', ['stats', '--json']);
    expect(read.code, read.stderr).toBe(0);
    expect(JSON.parse(read.stdout)).toMatchObject({ pipelines: [{ inserted: 201, deadLetters: 1 }] });
  });

  it('refuses index rebuild to winnow_run in one line, before anything, naming TRUNCATE and OPTIMIZE on the index', async () => {
    // A second pipeline of the database with dedup.index rocksdb, migrated by the admin; run's grants
    // (README) lack TRUNCATE and OPTIMIZE on its index table.
    const name = `${r.pipeline}_kv`;
    const kvTopic = uniqueName('grantskv');
    await createTopic(kvTopic, 1);
    const kvConfig = async (role: keyof RestrictedUsers['users'] | 'admin'): Promise<string> => {
      const file = path.join(dir, `kv-${role}.yaml`);
      const user =
        role === 'admin'
          ? ''
          : `\n      user: ${r.users[role].name}\n      password: { env: TEST_CLICKHOUSE_PASSWORD }`;
      await writeFile(
        file,
        `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${kvTopic}] }
    columns:
      - { name: event_id, type: String }
    dedup: { window: 1h, index: rocksdb }
    sink:
      url: ${s.clickhouseUrl}${user}
      database: ${r.database}
      table: events_kv
`,
      );
      return file;
    };
    const up = await runCli(['migrate', 'up', '--config', await kvConfig('admin')], env);
    expect(up.code, up.stderr).toBe(0);
    const kv = `\`${r.database}\`.\`winnow_${name}_seen_kv\``;
    const rebuild = await runCli(['index', 'rebuild', '--config', await kvConfig('run')], as('run'));
    expect(rebuild.code).toBe(1);
    expect(rebuild.stderr.trim().split('\n')).toHaveLength(1);
    expect(rebuild.stderr).toContain(`lacks TRUNCATE ON ${kv}, OPTIMIZE ON ${kv}, needed for index rebuild`);
    expect(rebuild.stderr).toContain(`GRANT TRUNCATE, OPTIMIZE ON ${kv} TO winnow_run`);
    // Without the compaction, only TRUNCATE is needed.
    const plain = await runCli(['index', 'rebuild', '--no-compact', '--config', await kvConfig('run')], as('run'));
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain(`lacks TRUNCATE ON ${kv}, needed for index rebuild`);
    expect(plain.stderr).not.toContain('OPTIMIZE');
    // Refused before the lease: no command claimed the pipeline.
    expect(await num(`SELECT count() AS n FROM ${q('winnow_leases')} WHERE pipeline = '${name}'`)).toBe(0);
  });
});
