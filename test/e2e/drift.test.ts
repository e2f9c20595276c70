/**
 * Why one file over 300 lines: its live-source cases run in order on one pipeline under load (each step takes the previous one's state).
 *
 * Drift is never silent (issue 11, point 1), on real servers through the
 * `winnow` command. `migrate plan` shows, object by object, how ClickHouse
 * differs from the configuration; `migrate up` changes the Kafka source in
 * place (brokers, topics, consumers, auth, consumer group) while a daemon
 * runs and a producer sends, and refuses a key change, changing nothing; an
 * added column goes in by ALTER and leaves every object as a fresh install of
 * the new configuration builds it; `migrate down` drops nothing without --yes.
 * The stream is phase 1 of the seeded generator (test/support/oracle.ts) in
 * chunks, each later than the last in every partition: every duplicate sits in
 * its original's partition, so the oracle's answer does not depend on where
 * slices end. Invariants: I1-I3 (the final table is exactly the oracle's), I4
 * (dead letters are exactly the malformed messages; the stats reconcile).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { qualified } from '../../src/clickhouse/sql.ts';
import { parseConfig } from '../../src/config/load.ts';
import { migrations } from '../../src/provisioning/migrations/index.ts';
import { latestStatements } from '../../src/provisioning/objects.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { runCli, startDaemon, type Daemon } from '../support/cli.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { expectedRows, generate, sortRows, type FinalRow, type GenMessage } from '../support/oracle.ts';

/** Objects a pipeline has at the latest version: one CREATE each (the same for every config). */
const OBJECTS = latestStatements(
  parseConfig(
    `pipelines:\n  - name: n\n    source: { brokers: [k:9092], topics: [t] }\n    columns: [{ name: id, type: String }]\n    dedup: { key: [id], window: 1h }\n    sink: { database: d, table: t }\n`,
    'objects',
  ).pipelines[0]!,
  { createFinal: true },
).filter((s) => s.sql.startsWith('CREATE ')).length;

const WINDOW_MS = 10 * 60_000;
const EMAIL = '- { name: email, type: String, path: user_email }';

async function tempFile(prefix: string): Promise<string> {
  return path.join(await mkdtemp(path.join(os.tmpdir(), prefix)), 'winnow.yaml');
}

interface Source {
  brokers: string[];
  topics: string[];
  consumers?: number;
  group?: string;
  sasl?: boolean;
}

/** The users scenario's pipeline with `source` and `key`. */
function usersYaml(name: string, db: string, source: Source, key = ['event_id']): string {
  const s = servers();
  const auth = source.sasl
    ? `\n      auth: { protocol: SASL_PLAINTEXT, mechanism: PLAIN, username: ${s.sasl.username},` +
      ' password: { env: DRIFT_KAFKA_PASSWORD } }'
    : '';
  return `pipelines:
  - name: ${name}
    source:
      brokers: [${source.brokers.join(', ')}]
      topics: [${source.topics.join(', ')}]
      consumers: ${source.consumers ?? 1}${source.group ? `\n      consumerGroup: ${source.group}` : ''}${auth}
    columns:
      - { name: event_id, type: UUID }
      - { name: user_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: email, type: String, path: user_email }
      - { name: created_at, type: DateTime, path: created_at }
    dedup: { key: [${key.join(', ')}], window: 10m }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: users_dedup }
    schedule: { interval: 1s }
`;
}

/** The same broker under another name (127.0.0.1 and localhost), when it has one. */
function otherAddressForm(brokers: string[]): string[] | undefined {
  const swapped = brokers.map((b) =>
    b.startsWith('127.0.0.1:')
      ? `localhost:${b.slice(10)}`
      : b.startsWith('localhost:')
        ? `127.0.0.1:${b.slice(10)}`
        : b,
  );
  return swapped.join() === brokers.join() ? undefined : swapped;
}

/** The stream: chunks of phase 1, each later than everything before it in every partition, sent until stopped. */
class Stream {
  readonly sent: GenMessage[] = [];
  private stopped = false;
  private done: Promise<void> | undefined;

  constructor(
    private readonly topics: [string, string],
    private readonly seed: number,
  ) {}

  start(): void {
    this.done = this.run();
  }

  async stop(): Promise<GenMessage[]> {
    this.stopped = true;
    await this.done;
    return this.sent;
  }

  private async run(): Promise<void> {
    const producer = kafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      let base = Date.now() - 5 * 60_000;
      for (let k = 0; !this.stopped; k++) {
        const [chunk = []] = generate(this.seed + k, 120, {
          topics: [
            { name: this.topics[0], partitions: 2 },
            { name: this.topics[1], partitions: 1 },
          ],
          windowMs: WINDOW_MS,
          baseTime: base,
        });
        base = Math.max(...chunk.map((m) => m.timestamp)) + 1_000;
        for (let i = 0; i < chunk.length && !this.stopped; i += 50) {
          const part = chunk.slice(i, i + 50);
          const byTopic = new Map<string, GenMessage[]>();
          for (const m of part) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m]);
          await producer.sendBatch({
            topicMessages: [...byTopic.entries()].map(([topic, ms]) => ({
              topic,
              messages: ms.map((m) => ({ partition: m.partition, timestamp: String(m.timestamp), value: m.value })),
            })),
          });
          this.sent.push(...part);
          await sleep(250);
        }
      }
    } finally {
      await producer.disconnect();
    }
  }
}

/** Every table and view of the database with its CREATE and metadata time: what must not change when up refuses. */
async function objects(db: Db, database: string): Promise<Record<string, string>> {
  const rows = await db.rows<{ name: string; q: string; t: string }>(
    'SELECT name, create_table_query AS q, toString(metadata_modification_time) AS t' +
      ' FROM system.tables WHERE database = {d:String} ORDER BY name',
    { d: database },
  );
  return Object.fromEntries(rows.map((r) => [r.name, `${r.t} ${r.q}`]));
}

async function count(db: Db, sql: string): Promise<number> {
  const rows = await db.rows<{ n: string }>(sql);
  return Number(rows[0]?.n ?? 0);
}

/** The plan's line for an object: `  <state>  <title>...`. */
function planLine(out: string, object: string): string {
  const line = out.split('\n').find((l) => /^\s+(unchanged|differs|missing)\s/.test(l) && l.includes(` ${object}`));
  if (!line) throw new Error(`no plan line for ${object} in:\n${out}`);
  return line;
}

function stateLines(out: string): string[] {
  return out.split('\n').filter((l) => /^\s+(unchanged|differs|missing)\s/.test(l));
}

describe('a live pipeline whose Kafka source changes (daemon running, producer sending)', { timeout: 240_000 }, () => {
  const s = servers();
  const name = uniqueName('drift');
  const topicA = uniqueName('drift_a');
  const topicB = uniqueName('drift_b');
  const queue = `winnow_${name}_queue`;
  const staging = `winnow_${name}_staging`;
  const env = { DRIFT_KAFKA_PASSWORD: s.sasl.password };
  let database: string;
  let client: Db;
  let file: string;
  let daemon: Daemon | undefined;
  const stream = new Stream([topicA, topicB], 11_000);
  let source: Source;

  const cli = (...args: string[]) => runCli(['migrate', ...args, '--config', file], env);
  const configure = async (next: Source, key?: string[]): Promise<void> => {
    await writeFile(file, usersYaml(name, database, next, key));
  };
  const staged = (where = '1'): Promise<number> =>
    count(client, `SELECT count() AS n FROM ${qualified(database, `winnow_${name}_staging`)} WHERE ${where}`);
  /** Consumption goes on through the queue as it is now: staging grows by `n` more messages. */
  const consumes = async (n: number, where = '1'): Promise<void> => {
    const before = await staged(where);
    // ClickHouse drops a Kafka table without leaving its consumer group: the recreated queue's
    // consumers join once Kafka has expelled the old ones (session timeout, 45 s by default).
    await waitFor(
      () => staged(where),
      (v) => v >= before + n,
      120_000,
      `${n} more staged messages (${where})`,
    );
  };
  const engine = async (): Promise<string> => {
    const rows = await client.rows<{ e: string }>(
      'SELECT engine_full AS e FROM system.tables WHERE database = {d:String} AND name = {t:String}',
      {
        d: database,
        t: queue,
      },
    );
    return rows[0]?.e ?? '';
  };

  beforeAll(async () => {
    const fresh = await freshDatabase('winnow_drift');
    database = fresh.name;
    await fresh.client.close();
    client = connect({ url: s.clickhouseUrl });
    await createTopic(topicA, 2);
    await createTopic(topicB, 1);
    file = await tempFile('winnow-drift-');
    source = { brokers: s.kafkaBrokersForClickHouse, topics: [topicA] };
    await configure(source);
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    // The daemon runs with the first configuration throughout: it reads its file once, at start.
    const daemonFile = await tempFile('winnow-drift-daemon-');
    await writeFile(daemonFile, usersYaml(name, database, source));
    daemon = await startDaemon(daemonFile);
    stream.start();
    await consumes(50);
  });

  afterAll(async () => {
    await stream.stop();
    if (daemon) await daemon.stop();
    // Leave the database for inspection, but stop its queue from polling.
    await client
      ?.command(`DROP VIEW IF EXISTS ${qualified(database, `winnow_${name}_parsed_mv`)} SYNC`)
      .catch(() => undefined);
    await client?.command(`DROP TABLE IF EXISTS ${qualified(database, queue)} SYNC`).catch(() => undefined);
    await client?.close();
  });

  it('plan shows every object unchanged right after up', async () => {
    const plan = await cli('plan');
    expect(plan.code, plan.stderr).toBe(0);
    const lines = stateLines(plan.stdout);
    // The final table, 11 more objects of the pipeline, the tables its database's pipelines share, 2 repair copies.
    expect(lines).toHaveLength(OBJECTS);
    for (const l of lines) expect(l.trim().startsWith('unchanged'), l).toBe(true);
    expect(plan.stdout).toContain('migrate up would change nothing');
    const status = await cli('status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).not.toContain('pending');
    expect(stateLines(status.stdout)).toHaveLength(OBJECTS);
  });

  const brokersCase =
    'brokers: the same broker by another address form; plan names the setting, --dry-run only prints, ' +
    'up recreates the queue';
  it(brokersCase, async ({ skip }) => {
    const other = otherAddressForm(source.brokers);
    if (!other) skip(`no other address form for ${source.brokers.join(',')}`);
    source = { ...source, brokers: other! };
    await configure(source);
    const plan = await cli('plan');
    expect(plan.code, plan.stderr).toBe(0);
    const line = planLine(plan.stdout, queue);
    expect(line).toMatch(/^\s+differs\s/);
    expect(line).toContain(`kafka_broker_list '${s.kafkaBrokersForClickHouse.join(',')}' -> '${other!.join(',')}'`);
    expect(planLine(plan.stdout, `winnow_${name}_seen`)).toMatch(/^\s+unchanged\s/);

    const dry = await cli('up', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`DROP VIEW IF EXISTS \`${database}\`.\`winnow_${name}_parsed_mv\``);
    expect(dry.stdout).toContain(`DROP TABLE IF EXISTS \`${database}\`.\`${queue}\``);
    expect(dry.stdout).toContain(`kafka_broker_list = '${other!.join(',')}'`);
    expect(await engine()).toContain(`kafka_broker_list = '${s.kafkaBrokersForClickHouse.join(',')}'`);

    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    // Each step as it runs: consumption stops first, the parsing view comes back last.
    const steps = up.stdout.split('\n').map((l) => l.trim());
    const at = (prefix: string): number => steps.findIndex((l) => l.startsWith(prefix));
    expect(at(`drop view winnow_${name}_parsed_mv`)).toBeGreaterThanOrEqual(0);
    expect(at(`drop view winnow_${name}_parsed_mv`)).toBeLessThan(at(`drop table ${queue}`));
    expect(at(`drop table ${queue}`)).toBeLessThan(at(`Kafka queue ${queue}`));
    expect(at(`Kafka queue ${queue}`)).toBeLessThan(at(`parsing view winnow_${name}_parsed_mv`));
    expect(up.stdout).not.toContain('up to date');
    expect(await engine()).toContain(`kafka_broker_list = '${other!.join(',')}'`);
    const after = await cli('plan');
    for (const l of stateLines(after.stdout)) expect(l.trim().startsWith('unchanged'), l).toBe(true);
    const again = await cli('up');
    expect(again.stdout).toContain('up to date');
    await consumes(50);
  });

  it('topics and consumers: a second topic, two consumers', async () => {
    source = { ...source, topics: [topicA, topicB], consumers: 2 };
    await configure(source);
    const plan = await cli('plan');
    const line = planLine(plan.stdout, queue);
    expect(line).toContain(`kafka_topic_list '${topicA}' -> '${topicA},${topicB}'`);
    expect(line).toContain('kafka_num_consumers 1 -> 2');
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    expect(await engine()).toContain(`kafka_topic_list = '${topicA},${topicB}'`);
    // The new topic is read from its start (initialOffset: earliest), the old one goes on.
    await consumes(20, `_topic = '${topicB}'`);
    await consumes(20, `_topic = '${topicA}'`);
  });

  it('auth: PLAINTEXT to SASL_PLAINTEXT on the SASL listener; the password is never printed nor compared', async ({
    skip,
  }) => {
    if (s.kafkaSaslBrokers.length === 0) skip('these servers have no SASL listener (testcontainers mode)');
    const previous = source.brokers;
    source = { ...source, brokers: s.kafkaSaslBrokers, sasl: true };
    await configure(source);
    const plan = await cli('plan');
    const line = planLine(plan.stdout, queue);
    expect(line).toContain(`kafka_broker_list '${previous.join(',')}' -> '${s.kafkaSaslBrokers.join(',')}'`);
    expect(line).toContain("kafka_security_protocol (none) -> 'sasl_plaintext'");
    expect(line).toContain("kafka_sasl_mechanism (none) -> 'PLAIN'");
    expect(line).toContain(`kafka_sasl_username (none) -> '${s.sasl.username}'`);
    expect(line).toContain("kafka_sasl_password (none) -> '***'");
    const dry = await cli('up', '--dry-run');
    expect(dry.stdout).toContain("kafka_sasl_password = '***'");
    for (const out of [plan.stdout, plan.stderr, dry.stdout, dry.stderr]) expect(out).not.toContain(s.sasl.password);
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout + up.stderr).not.toContain(s.sasl.password);
    expect(await engine()).toContain("kafka_security_protocol = 'sasl_plaintext'");
    const after = await cli('plan');
    for (const l of stateLines(after.stdout)) expect(l.trim().startsWith('unchanged'), l).toBe(true);
    expect(after.stdout).toMatch(/kafka_sasl_password is not compared/);
    await consumes(50);
  });

  it('consumer group: the new group starts where the old one stopped', async () => {
    const group = uniqueName('drift_group');
    const redelivered = (): Promise<number> =>
      count(
        client,
        `SELECT count() - uniqExact(_topic, _partition, _offset) AS n FROM ${qualified(database, staging)}`,
      );
    const before = await redelivered();
    const stagedBefore = await staged();
    source = { ...source, group };
    await configure(source);
    const plan = await cli('plan');
    expect(planLine(plan.stdout, queue)).toContain(`kafka_group_name 'winnow_${name}' -> '${group}'`);
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`consumer group ${group}: starts at the committed offsets of winnow_${name}`);
    await consumes(50);
    // Read from the start, the new group would have staged everything again.
    expect((await redelivered()) - before).toBeLessThan(stagedBefore / 2);
  });

  it('refuses a key change with a one-line diff, exits non-zero and changes nothing', async () => {
    const before = await objects(client, database);
    await configure(source, ['event_id', 'user_id']);
    const plan = await cli('plan');
    expect(plan.code).toBe(1);
    expect(planLine(plan.stdout, `winnow_${name}_seen`)).toMatch(/^\s+differs\s.*ORDER BY/);
    expect(plan.stdout).toContain('migrate up would refuse');
    const up = await cli('up');
    expect(up.code).toBe(1);
    const errors = up.stderr.trim().split('\n');
    expect(errors, up.stderr).toHaveLength(1);
    expect(errors[0]).toContain('refused');
    expect(errors[0]).toContain('dedup.key');
    expect(errors[0]).toContain('migrate down --yes');
    expect(await objects(client, database)).toEqual(before);
    await configure(source);
  });

  it("after all of it the daemon is still going and the final table is exactly the oracle's", async () => {
    await consumes(50);
    const sent = await stream.stop();
    const malformed = sent.filter((m) => m.kind === 'malformed').length;
    const valid = sent.length - malformed;
    const stats = async (): Promise<Record<string, number>> => {
      const res = await fetch(`${daemon!.api}/api/v1/pipelines/${name}/stats`);
      return (await res.json()) as Record<string, number>;
    };
    const final = await waitFor(
      stats,
      (v) =>
        v['messagesConsumed'] === sent.length &&
        v['pendingRows'] === 0 &&
        v['inserted']! + v['duplicatesDropped']! === valid,
      120_000,
      `the daemon to process all ${sent.length} messages`,
    );
    const expected = expectedRows([sent], WINDOW_MS);
    const rows = await client.rows<FinalRow>(
      'SELECT toString(event_id) AS event_id, toString(user_id) AS user_id, name, email,' +
        ' toString(created_at) AS created_at' +
        ` FROM ${qualified(database, 'users_dedup')}`,
    );
    expect(rows.length).toBe(expected.length);
    expect(sortRows(rows)).toEqual(sortRows(expected));
    expect(final).toMatchObject({
      staged: valid,
      inserted: expected.length,
      duplicatesDropped: valid - expected.length,
      deadLetters: malformed,
    });
    const topics = await client.rows<{ t: string }>(
      `SELECT DISTINCT _topic AS t FROM ${qualified(database, `winnow_${name}_staging`)} ORDER BY t`,
    );
    expect(topics.map((r) => r.t).sort()).toEqual([topicA, topicB].sort());
    process.stderr.write(
      `drift: produced ${sent.length} (${valid} valid, ${malformed} malformed) while the source changed;` +
        ` kept ${expected.length}\n`,
    );
    expect(daemon!.child.exitCode).toBeNull();
    expect(await daemon!.stop()).toBe(0);
    daemon = undefined;
  });
});

describe('added columns, a fresh database, and down', () => {
  const s = servers();
  const name = uniqueName('cols');
  const topic = uniqueName('cols');
  let database: string;
  let client: Db;
  let file: string;

  const yaml = (withEmail: boolean): string => `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }${withEmail ? `\n      ${EMAIL}` : ''}
      - { name: n, type: UInt32 }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${database}, table: events }
`;
  const cli = (...args: string[]) => runCli(['migrate', ...args, '--config', file]);
  const send = async (values: Record<string, unknown>[]): Promise<void> => {
    const p = kafka().producer();
    await p.connect();
    await p.send({ topic, messages: values.map((v) => ({ value: JSON.stringify(v) })) });
    await p.disconnect();
  };
  const event = (i: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    event_id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    user_name: `u${i}`,
    n: i,
    ...extra,
  });
  /** Slices until the final table holds `rows` rows. */
  const drain = async (text: string, rows: number): Promise<void> => {
    const p = parseConfig(text, 'test').pipelines[0]!;
    const processor = new Processor(client, p);
    const counted = async (): Promise<number> => {
      while (await processor.runOneSlice()) {
        /* drain */
      }
      return count(client, `SELECT count() AS n FROM ${qualified(database, 'events')}`);
    };
    await waitFor(counted, (v) => v >= rows, 60_000, `${rows} rows in events`);
  };

  beforeAll(async () => {
    const fresh = await freshDatabase('winnow_cols');
    database = fresh.name;
    await fresh.client.close();
    client = connect({ url: s.clickhouseUrl });
    await createTopic(topic, 1);
    file = await tempFile('winnow-cols-');
    await writeFile(file, yaml(false));
  });

  afterAll(async () => {
    await client
      ?.command(`DROP VIEW IF EXISTS ${qualified(database, `winnow_${name}_parsed_mv`)} SYNC`)
      .catch(() => undefined);
    await client
      ?.command(`DROP TABLE IF EXISTS ${qualified(database, `winnow_${name}_queue`)} SYNC`)
      .catch(() => undefined);
    await client?.close();
  });

  it('plan on a fresh database: every object missing, every migration pending', async () => {
    const plan = await cli('plan');
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`${migrations.length} pending`);
    const lines = stateLines(plan.stdout);
    expect(lines).toHaveLength(OBJECTS);
    for (const l of lines) expect(l.trim().startsWith('missing'), l).toBe(true);
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
  });

  const addedCase =
    'an added column goes in by ALTER: every object is then what a fresh install of the new configuration builds';
  it(addedCase, async () => {
    await send([event(1, { user_email: 'a@x' }), event(2), event(1)]);
    await drain(yaml(false), 2);
    await writeFile(file, yaml(true));
    const plan = await cli('plan');
    expect(plan.code, plan.stderr).toBe(0);
    for (const t of [
      `winnow_${name}_staging`,
      `winnow_${name}_kept`,
      `winnow_${name}_parsed`,
      'events',
      `winnow_${name}_repair_final`,
    ]) {
      expect(planLine(plan.stdout, t)).toMatch(/^\s+differs\s.*column email String added/);
    }
    expect(planLine(plan.stdout, `winnow_${name}_staging_mv`)).toMatch(/^\s+differs\s/);
    expect(planLine(plan.stdout, `winnow_${name}_kept_to_final_mv`)).toMatch(/^\s+differs\s/);
    expect(planLine(plan.stdout, `winnow_${name}_seen`)).toMatch(/^\s+unchanged\s/);
    expect(planLine(plan.stdout, `winnow_${name}_queue`)).toMatch(/^\s+unchanged\s/);
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`staging table winnow_${name}_staging: add column email`);
    const after = await cli('plan');
    for (const l of stateLines(after.stdout)) expect(l.trim().startsWith('unchanged'), l).toBe(true);

    // Object by object, what the live builders build for the new configuration in an empty database.
    const p = parseConfig(yaml(true), 'test').pipelines[0]!;
    const empty = await freshDatabase('winnow_cols_live');
    await empty.client.close();
    const q = { ...p, sink: { ...p.sink, database: empty.name } };
    for (const st of latestStatements(q, { createFinal: true })) await client.command(st.sql);
    await client.command(`DROP VIEW ${qualified(empty.name, `winnow_${name}_parsed_mv`)} SYNC`);
    await client.command(`DROP TABLE ${qualified(empty.name, `winnow_${name}_queue`)} SYNC`);
    const shape = async (d: string): Promise<Record<string, string>> => {
      const rows = await client.rows<{ name: string }>(
        'SELECT name FROM system.tables' +
          " WHERE database = {d:String} AND NOT startsWith(name, 'winnow_migrations_') ORDER BY name",
        { d },
      );
      const out: Record<string, string> = {};
      for (const r of rows) {
        const [c] = await client.rows<{ statement: string }>(`SHOW CREATE TABLE ${qualified(d, r.name)}`);
        out[r.name] = (c?.statement ?? '').replaceAll(d, '<db>');
      }
      return out;
    };
    const live = await shape(empty.name);
    const migrated = await shape(database);
    delete migrated[`winnow_${name}_queue`];
    delete migrated[`winnow_${name}_parsed_mv`];
    expect(migrated).toEqual(live);

    await send([event(3, { user_email: 'c@x' }), event(3, { user_email: 'dup@x' })]);
    await drain(yaml(true), 3);
    const rows = await client.rows<{ name: string; email: string; n: number }>(
      `SELECT name, email, n FROM ${qualified(database, 'events')} ORDER BY n`,
    );
    expect(rows).toEqual([
      { name: 'u1', email: '', n: 1 },
      { name: 'u2', email: '', n: 2 },
      { name: 'u3', email: 'c@x', n: 3 },
    ]);
  });

  it('a setting the builders set, reset by hand, is set again (the slices table keeps block ids)', async () => {
    await client.command(
      `ALTER TABLE ${qualified(database, 'winnow_slices')} RESET SETTING non_replicated_deduplication_window`,
    );
    const plan = await cli('plan');
    expect(planLine(plan.stdout, 'winnow_slices')).toContain('non_replicated_deduplication_window (none) -> 10000');
    const up = await cli('up');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('slices table winnow_slices: non_replicated_deduplication_window = 10000');
    for (const l of stateLines((await cli('plan')).stdout)) expect(l.trim().startsWith('unchanged'), l).toBe(true);
  });

  it('down lists what it drops and, without --yes and no terminal, drops nothing', async () => {
    const before = await objects(client, database);
    const down = await cli('down');
    expect(down.code).not.toBe(0);
    expect(down.stdout).toMatch(new RegExp(`winnow_${name}_seen \\(3 rows\\)`));
    expect(down.stdout).toMatch(new RegExp(`winnow_${name}_staging \\(\\d+ rows\\)`));
    expect(down.stdout).toContain('events');
    expect(down.stderr).toContain('--yes');
    expect(down.stderr).toContain('nothing was dropped');
    expect(await objects(client, database)).toEqual(before);
    const dry = await cli('down', '--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('DROP TABLE IF EXISTS');
    expect(await objects(client, database)).toEqual(before);
    // A new Kafka password cannot be compared (ClickHouse hides it): --recreate-source applies it anyway.
    const recreate = await cli('up', '--recreate-source', '--dry-run');
    expect(recreate.code, recreate.stderr).toBe(0);
    expect(recreate.stdout).toContain('recreated as asked (--recreate-source)');
    expect(recreate.stdout).toContain(`DROP TABLE IF EXISTS \`${database}\`.\`winnow_${name}_queue\``);
    expect(await objects(client, database)).toEqual(before);
    const yes = await cli('down', '--yes');
    expect(yes.code, yes.stderr).toBe(0);
    const left = await client.rows<{ name: string }>(
      'SELECT name FROM system.tables WHERE database = {d:String} ORDER BY name',
      { d: database },
    );
    expect(left.map((r) => r.name)).toEqual([
      'events',
      'winnow_checks',
      'winnow_leases',
      `winnow_migrations_${name}`,
      'winnow_repairs',
      'winnow_replay_jobs',
      'winnow_replays',
      'winnow_slices',
    ]);
    expect(await count(client, `SELECT count() AS n FROM ${qualified(database, 'events')}`)).toBe(3);
  });
});
