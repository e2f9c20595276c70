/**
 * Why one file over 300 lines: one subject (the pre-flight) on one shared pipeline fixture.
 *
 * Pre-flight on real servers: `winnow config check`, `migrate up` and `run`
 * ask Kafka and ClickHouse whether a configuration will work before anything
 * is created. Each failure is one line naming the key and the fix, the exit
 * code is non-zero, and nothing exists afterwards. Covered: a missing topic,
 * a wrong Kafka password (SASL listener), an unknown type, a column list
 * injected through a type, a URL engine, `; DROP` in partitionBy, fragments
 * that pass the static checks but not ClickHouse, and missing grants. The
 * embedded ClickHouse has no SQL-driven access control (its one user
 * directory is users.xml, and `default` may not CREATE USER), so the grants
 * tests start their own embedded ClickHouse with restricted users declared
 * in users.xml (`<grants>`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedClickHouse, type RunningClickHouse } from '../../dev/clickhouse.ts';
import { connect } from '../../src/clickhouse/client.ts';
import { validateConfig } from '../../src/config/index.ts';
import { createDatabaseGrant, grantQueries } from '../../src/provisioning/grants.ts';
import { runCli } from '../support/cli.ts';
import { createTopic, servers, uniqueName } from '../support/helpers.ts';

interface Pipeline {
  name?: string;
  topics: string[];
  db: string;
  brokers?: string[];
  auth?: string;
  columns?: string;
  sink?: string;
  url?: string;
}

const COLUMNS = `      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: created_at, type: DateTime, optional: true }`;

function yaml(p: Pipeline): string {
  const s = servers();
  return `pipelines:
  - name: ${p.name ?? uniqueName('pf')}
    source:
      brokers: [${(p.brokers ?? s.kafkaBrokersForClickHouse).join(', ')}]
      topics: [${p.topics.join(', ')}]${p.auth ? `\n      auth: ${p.auth}` : ''}
    columns:
${p.columns ?? COLUMNS}
    dedup: { window: 1h }
    sink: { url: '${p.url ?? s.clickhouseUrl}', database: ${p.db}, table: events${p.sink ?? ''} }
`;
}

async function writeConfig(text: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-preflight-')), 'winnow.yaml');
  await writeFile(file, text);
  return file;
}

/** What exists in ClickHouse of a database (which the failing commands must not have created). */
async function created(db: string, url = servers().clickhouseUrl): Promise<{ database: boolean; tables: string[] }> {
  const client = connect({ url });
  try {
    const dbs = await client.rows<{ n: string }>('SELECT count() AS n FROM system.databases WHERE name = {db:String}', {
      db,
    });
    const tables = await client.rows<{ name: string }>(
      'SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name',
      { db },
    );
    return { database: Number(dbs[0]?.n) > 0, tables: tables.map((t) => t.name) };
  } finally {
    await client.close();
  }
}

const NOTHING = { database: false, tables: [] };

/** The lines of stderr that name a problem (without the summary line). */
function problems(stderr: string, command: string): string[] {
  return stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith(`winnow ${command}: `) && !l.includes('pre-flight failed'));
}

/** The errors `winnow run` logged (every line it prints is JSON). */
function runErrors(stderr: string): { msg: string; key?: string }[] {
  const lines = stderr.trim().split('\n');
  return lines
    .map((l) => JSON.parse(l) as { level: string; msg: string; key?: string })
    .filter((l) => l.level === 'error');
}

describe('pre-flight on the shared servers', () => {
  it('config check prints one line per check, all ok for a working pipeline; --offline asks no server', async () => {
    const topic = uniqueName('pf_ok');
    await createTopic(topic, 1);
    const db = uniqueName('winnow_pf');
    const file = await writeConfig(
      yaml({
        topics: [topic],
        db,
        columns: `${COLUMNS}\n      - { name: len, type: UInt64, expr: 'length(_raw)' }`,
        sink: ', partitionBy: toYYYYMM(created_at)',
      }),
    );
    const r = await runCli(['config', 'check', '--config', file]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(
      lines.slice(0, -1).every((l) => /^ok {6}pipelines\[0\]/.test(l)),
      r.stdout,
    ).toBe(true);
    for (const key of [
      'source.brokers',
      'source.topics[0]',
      'sink.url',
      'sink.user',
      'columns[0].type',
      'columns[3].expr',
      'sink.engine',
      'sink.partitionBy',
    ]) {
      expect(r.stdout).toContain(`ok      pipelines[0].${key} `);
    }
    expect(r.stdout).toMatch(/sink\.user "default": holds the grants for migrate up \(/);
    expect(r.stdout).toMatch(/sink\.user "default": holds the grants for run, check, replay and deadletters \(/);
    expect(lines.at(-1)).toMatch(/: \d+ ok, 0 failed, 0 skipped$/);

    const offline = await runCli(['config', 'check', '--config', file, '--offline']);
    expect(offline.code, offline.stdout).toBe(0);
    expect(offline.stdout).toContain('skipped pipelines[0].source Kafka: not asked (--offline)');
    expect(offline.stdout).toContain('skipped pipelines[0].sink ClickHouse: not asked (--offline)');
    expect(await created(db)).toEqual(NOTHING);

    const help = await runCli(['config', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: winnow config check');
    expect(help.stdout).toContain('--offline');
  });

  it('refuses a missing topic in migrate up, run and config check, in one line naming the key', async () => {
    const topic = uniqueName('pf_there');
    await createTopic(topic, 1);
    const missing = uniqueName('pf_missing');
    const db = uniqueName('winnow_pf');
    const file = await writeConfig(yaml({ topics: [topic, missing], db }));
    const line = `pipelines[0].source.topics[1] "${missing}": no such topic on`;

    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code).toBe(1);
    expect(problems(up.stderr, 'migrate up')).toEqual([expect.stringContaining(line) as unknown]);
    expect(up.stderr).toContain('(create it, or correct source.topics)');
    expect(up.stderr).toContain('pre-flight failed (1 problem); nothing was created');

    const started = Date.now();
    const run = await runCli(['run', '--config', file, '--port', '0'], {}, 60_000);
    expect(run.code).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000);
    const errors = runErrors(run.stderr);
    expect(errors.map((e) => e.msg)).toEqual([
      expect.stringContaining(line),
      'pre-flight failed (1 problem); not started',
    ]);
    expect(errors[0]?.key).toBe('pipelines[0].source.topics[1]');

    const check = await runCli(['config', 'check', '--config', file]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`failed  ${line}`);
    expect(check.stdout).toContain(`ok      pipelines[0].source.topics[0] "${topic}": the topic exists`);
    expect(await created(db)).toEqual(NOTHING);
  });

  it('refuses a wrong Kafka password on the SASL listener, naming source.auth.password; nothing is created', async ({
    skip,
  }) => {
    const s = servers();
    if (s.kafkaSaslBrokers.length === 0) skip('these servers have no SASL listener (testcontainers mode)');
    const topic = uniqueName('pf_sasl');
    await createTopic(topic, 1);
    const db = uniqueName('winnow_pf');
    const auth =
      `{ protocol: SASL_PLAINTEXT, mechanism: PLAIN, username: ${s.sasl.username},` +
      ' password: { env: PF_KAFKA_PASSWORD } }';
    const file = await writeConfig(yaml({ topics: [topic], db, brokers: s.kafkaSaslBrokers, auth }));

    const wrong = { PF_KAFKA_PASSWORD: `wrong-${randomBytes(4).toString('hex')}` };
    const up = await runCli(['migrate', 'up', '--config', file], wrong);
    expect(up.code).toBe(1);
    const lines = problems(up.stderr, 'migrate up');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`pipelines[0].source.auth.password (of "${s.sasl.username}"): Kafka refused the login`);
    expect(lines[0]).toContain('(check source.auth.username and source.auth.password)');
    expect(up.stderr).not.toContain(wrong.PF_KAFKA_PASSWORD);
    expect(await created(db)).toEqual(NOTHING);

    const right = await runCli(['config', 'check', '--config', file, '--for', 'migrate'], {
      PF_KAFKA_PASSWORD: s.sasl.password,
    });
    expect(right.code, right.stdout).toBe(0);
    expect(right.stdout).toContain(`(SASL_PLAINTEXT, PLAIN as "${s.sasl.username}")`);
  });

  it('asks ClickHouse about every column type: an unknown type is one line with its key and a suggestion', async () => {
    const topic = uniqueName('pf_type');
    await createTopic(topic, 1);
    const db = uniqueName('winnow_pf');
    const columns = `      - { name: event_id, type: UUUID }
      - { name: tags, type: "Nullable(Array(String))" }
      - { name: n, type: int }`;
    const file = await writeConfig(yaml({ topics: [topic], db, columns }));
    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code).toBe(1);
    expect(problems(up.stderr, 'migrate up')).toEqual([
      'winnow migrate up: pipelines[0].columns[0].type "UUUID": ' +
        'ClickHouse does not know this type (did you mean UUID?)',
      'winnow migrate up: pipelines[0].columns[1].type "Nullable(Array(String))": ClickHouse refuses this type: ' +
        'Nested type Array(String) cannot be inside Nullable type' +
        ' (give one ClickHouse type like String, DateTime64(3) or Nullable(Int64))',
    ]);
    const check = await runCli(['config', 'check', '--config', file]);
    expect(check.stdout).toContain('ok      pipelines[0].columns[2].type "int": ClickHouse type Int32');
    expect(await created(db)).toEqual(NOTHING);
  });

  it('refuses a column list in a type, a URL engine and "; DROP" in partitionBy at load, offline too', async () => {
    const db = uniqueName('winnow_pf');
    const cases: [Partial<Pipeline>, string][] = [
      [
        {
          columns:
            `${COLUMNS}\n` +
            "      - { name: x, type: 'Nullable(String), evil String DEFAULT currentUser(), y Nullable(String)' }",
        },
        'at pipelines[0].columns[3].type: "Nullable(String), evil String DEFAULT currentUser(), y Nu...": ' +
          'the "," after Nullable(String) starts another column definition',
      ],
      [
        { sink: ', engine: "URL(\'http://127.0.0.1:1/x\', JSONEachRow)"' },
        'at pipelines[0].sink.engine: "URL(\'http://127.0.0.1:1/x\', JSONEachRow)": ' +
          'engine URL is not a MergeTree engine',
      ],
      [
        { sink: `, partitionBy: 'toYYYYMM(created_at); DROP TABLE ${db}.events'` },
        `at pipelines[0].sink.partitionBy: "toYYYYMM(created_at); DROP TABLE ${db}.events": ` +
          '";" would end the statement',
      ],
    ];
    for (const [change, message] of cases) {
      const file = await writeConfig(yaml({ topics: ['t'], db, ...change }));
      for (const args of [
        ['config', 'check', '--offline'],
        ['migrate', 'up'],
      ]) {
        const r = await runCli([...args, '--config', file]);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stdout + r.stderr).toContain(message);
        expect((r.stdout + r.stderr).trim().split('\n')).toHaveLength(1);
      }
    }
    expect(await created(db)).toEqual(NOTHING);
  });

  it('asks ClickHouse about fragments that pass the static checks: typo, added clause, absent engine', async () => {
    const topic = uniqueName('pf_sql');
    await createTopic(topic, 1);
    const db = uniqueName('winnow_pf');
    const file = await writeConfig(
      yaml({
        topics: [topic],
        db,
        columns: `${COLUMNS}\n      - { name: n, type: UInt64, expr: "JSONExtractUnt(_raw, 'n')" }`,
        sink: ", partitionBy: 'toYYYYMM(created_at) TTL created_at + INTERVAL 1 DAY'",
      }),
    );
    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code).toBe(1);
    expect(problems(up.stderr, 'migrate up')).toEqual([
      'winnow migrate up: pipelines[0].columns[3].expr "JSONExtractUnt(_raw, \'n\')": ' +
        'Function with name `JSONExtractUnt` does not exist (did you mean JSONExtractUInt or JSONExtractInt?)',
      'winnow migrate up: pipelines[0].sink.partitionBy "toYYYYMM(created_at) TTL created_at + INTERVAL 1 DAY": ' +
        'it changes the CREATE TABLE of the final table beyond its own place (another clause?)' +
        ' (give one ClickHouse expression over the columns, like toYYYYMM(created_at))',
    ]);
    const primary = await writeConfig(
      yaml({ topics: [topic], db, sink: ', partitionBy: event_id PRIMARY KEY event_id, engine: SharedMergeTree' }),
    );
    const check = await runCli(['config', 'check', '--config', primary]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(
      'failed  pipelines[0].sink.engine "SharedMergeTree": this ClickHouse has no table engine SharedMergeTree',
    );
    expect(check.stdout).toContain(
      'failed  pipelines[0].sink.partitionBy "event_id PRIMARY KEY event_id": ' +
        'ClickHouse does not read it as one expression: syntax error at "PRIMARY"',
    );
    expect(await created(db)).toEqual(NOTHING);
  });
});

describe('pre-flight of grants, on a ClickHouse with restricted users', () => {
  const db = uniqueName('winnow_pf_grants');
  const name = uniqueName('pfg');
  const password = `pw-${randomBytes(6).toString('hex')}`;
  let ch: RunningClickHouse | undefined;
  let topic: string;

  const pipelineYaml = (user: string): string =>
    yaml({ name, topics: [topic], db, url: ch!.url, sink: `, user: ${user}, password: { env: PF_CH_PASSWORD }` });
  const configFor = (user: string): Promise<string> => writeConfig(pipelineYaml(user));
  const env = { PF_CH_PASSWORD: password };

  beforeAll(async () => {
    topic = uniqueName('pf_grants');
    await createTopic(topic, 1);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-preflight-ch-'));
    // README "Grants" (src/provisioning/grants.ts) for this pipeline; the database does not exist yet.
    const p = validateConfig(
      {
        pipelines: [
          {
            name,
            source: { brokers: ['localhost:9092'], topics: [topic] },
            columns: [{ name: 'event_id', type: 'UUID' }],
            dedup: { window: '1h' },
            sink: { database: db, table: 'events' },
          },
        ],
      },
      'test',
      {},
    ).pipelines[0]!;
    const migrate = [...grantQueries('migrate', p), createDatabaseGrant(p)];
    ch = await startEmbeddedClickHouse({
      dataDir: path.join(dir, 'data'),
      httpPort: 0,
      tcpPort: 0,
      users: [
        { name: 'migrator', password, grants: migrate },
        // Not CREATE VIEW: CREATE TABLE implies it (CHECK GRANT says so; a materialized view is created without it).
        { name: 'no_alter', password, grants: migrate.map((g) => g.replace(' ALTER SETTINGS,', '')) },
        { name: 'runner', password, grants: grantQueries('run', p) },
        { name: 'reader', password, grants: [`GRANT SELECT, INSERT ON ${db}.*`] },
      ],
    });
  });

  afterAll(async () => {
    await ch?.stop();
  });

  it('names the missing grant and the GRANT to run, and creates nothing', async () => {
    const file = await configFor('no_alter');
    const check = await runCli(['config', 'check', '--config', file, '--for', 'migrate'], env);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(
      `failed  pipelines[0].sink.user "no_alter": lacks ALTER SETTINGS ON \`${db}\`.*, needed for migrate up ` +
        `(GRANT ALTER SETTINGS ON \`${db}\`.* TO no_alter; see README "Grants")`,
    );
    const up = await runCli(['migrate', 'up', '--config', file], env);
    expect(up.code).toBe(1);
    expect(problems(up.stderr, 'migrate up')).toEqual([
      expect.stringContaining('pipelines[0].sink.user "no_alter": lacks ALTER SETTINGS') as unknown,
    ]);
    expect(await created(db, ch!.url)).toEqual(NOTHING);
  });

  it('passes a user with exactly the grants of README "Grants" for migrate up, which then migrates', async () => {
    const file = await configFor('migrator');
    const check = await runCli(['config', 'check', '--config', file, '--for', 'migrate'], env);
    expect(check.code, check.stdout).toBe(0);
    const up = await runCli(['migrate', 'up', '--config', file], env);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`pipeline ${name}: pre-flight ok`);
    expect((await created(db, ch!.url)).tables).toContain(`winnow_${name}_queue`);
  });

  it('refuses to run as a user without ALTER DELETE, naming the GRANTs; passes the run grants', async () => {
    const reader = await runCli(['run', '--config', await configFor('reader'), '--port', '0'], env, 60_000);
    expect(reader.code).toBe(1);
    const lines = runErrors(reader.stderr).map((e) => e.msg);
    expect(lines).toEqual([
      `pipelines[0].sink.user "reader": lacks ALTER DELETE ON \`${db}\`.*, SELECT ON system.merge_tree_settings, ` +
        `CREATE TABLE ON \`${db}\`.\`winnow_${name}_queue\`, DROP TABLE ON \`${db}\`.\`winnow_${name}_queue\`, ` +
        'TABLE ENGINE ON `Kafka`, needed for run, check, replay and deadletters ' +
        `(GRANT ALTER DELETE ON \`${db}\`.* TO reader; GRANT SELECT ON system.merge_tree_settings TO reader; ` +
        `GRANT CREATE TABLE, DROP TABLE ON \`${db}\`.\`winnow_${name}_queue\` TO reader; ` +
        'GRANT TABLE ENGINE ON `Kafka` TO reader; see README "Grants")',
      'pre-flight failed (1 problem); not started',
    ]);
    // The daemon itself, as a user with these grants: test/e2e/grants.test.ts.
    const check = await runCli(['config', 'check', '--config', await configFor('runner'), '--for', 'run'], env);
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toContain('ok      pipelines[0].sink.user "runner": holds the grants for run, check, replay');
  });
});
