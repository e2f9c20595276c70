/**
 * Pipeline options end to end on real servers: SASL_PLAINTEXT sources (the
 * reference scenario's listener), initialOffset latest, event-time windows,
 * adopting an existing table (and refusing one that does not match), and
 * configuration errors. Invariants: I1/I2 on small exact sets; I4 for the
 * messages before the start offset (never staged, by configuration).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/clickhouse/client.ts';
import { parseConfig } from '../../src/config/load.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { runCli } from '../support/cli.ts';

async function writeConfig(yaml: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-opt-'));
  const file = path.join(dir, 'winnow.yaml');
  await writeFile(file, yaml);
  return file;
}

function event(id: number, extra: Record<string, unknown> = {}): string {
  const hex = id.toString(16).padStart(12, '0');
  return JSON.stringify({ event_id: `00000000-0000-4000-8000-${hex}`, user_name: `u${id}`, ...extra });
}

async function produce(topic: string, values: { value: string; timestamp?: number }[], sasl = false): Promise<void> {
  const p = kafka({ sasl }).producer();
  await p.connect();
  await p.send({
    topic,
    messages: values.map((v) => ({ value: v.value, ...(v.timestamp ? { timestamp: String(v.timestamp) } : {}) })),
  });
  await p.disconnect();
}

/** Ticks until `count()` of the final table stops changing with nothing left to slice. */
async function drain(yaml: string, db: string, expectRows: number): Promise<number> {
  const cfg = parseConfig(yaml, 'test');
  const p = cfg.pipelines[0]!;
  const client = connect({ url: p.sink.url });
  try {
    const processor = new Processor(client, p);
    const count = async (): Promise<number> => {
      while (await processor.runOneSlice()) {
        /* drain */
      }
      const r = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.${p.sink.table}`);
      return Number(r[0]?.n ?? 0);
    };
    return await waitFor(count, (n) => n >= expectRows, 60_000, `${expectRows} rows in ${p.sink.table}`);
  } finally {
    await client.close();
  }
}

describe('pipeline options', () => {
  it('reads the SASL_PLAINTEXT listener with PLAIN credentials and starts a new group at the log end (initialOffset: latest)', async ({
    skip,
  }) => {
    const s = servers();
    if (s.kafkaSaslBrokers.length === 0) skip('these servers have no SASL listener (testcontainers mode)');
    const { name: db } = await freshDatabase('winnow_opt');
    const topic = uniqueName('sasl');
    await createTopic(topic, 1);
    await produce(topic, [{ value: event(1) }, { value: event(2) }], true); // before: must be skipped
    const yaml = `pipelines:
  - name: ${uniqueName('latest')}
    source:
      brokers: [${s.kafkaSaslBrokers.join(', ')}]
      topics: [${topic}]
      auth: { protocol: SASL_PLAINTEXT, mechanism: PLAIN, username: ${s.sasl.username}, password: { env: TEST_KAFKA_PASSWORD } }
      initialOffset: latest
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
`;
    process.env['TEST_KAFKA_PASSWORD'] = s.sasl.password;
    const file = await writeConfig(yaml);
    const dry = await runCli(['migrate', 'up', '--config', file, '--dry-run'], {
      TEST_KAFKA_PASSWORD: s.sasl.password,
    });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("kafka_sasl_password = '***'");
    expect(dry.stdout).not.toContain(s.sasl.password);
    const up = await runCli(['migrate', 'up', '--config', file], { TEST_KAFKA_PASSWORD: s.sasl.password });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain('starts at the log end of 1 partitions');
    await produce(topic, [{ value: event(3) }, { value: event(3) }, { value: event(4) }], true);
    expect(await drain(yaml, db, 2)).toBe(2);
    const client = connect({ url: s.clickhouseUrl });
    const names = await client.rows<{ name: string }>(`SELECT name FROM ${db}.events ORDER BY name`);
    expect(names.map((r) => r.name)).toEqual(['u3', 'u4']);
    await client.close();
  });

  it('measures the window on an event-time column when told to', async () => {
    const s = servers();
    const { name: db } = await freshDatabase('winnow_opt');
    const topic = uniqueName('evtime');
    await createTopic(topic, 1);
    const yaml = `pipelines:
  - name: ${uniqueName('evtime')}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: at, type: "DateTime64(3, 'UTC')" }
    dedup: { window: 1h, time: { column: at } }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
`;
    const up = await runCli(['migrate', 'up', '--config', await writeConfig(yaml)]);
    expect(up.code, up.stderr).toBe(0);
    // Same key: 00:00 kept, 00:30 dropped, 01:00:01 kept (61 min after the kept one), 01:10 dropped.
    await produce(topic, [
      { value: event(9, { user_name: 'first', at: '2026-01-01T00:00:00Z' }) },
      { value: event(9, { user_name: 'in-window', at: '2026-01-01T00:30:00Z' }) },
      { value: event(9, { user_name: 'beyond', at: '2026-01-01T01:00:01Z' }) },
      { value: event(9, { user_name: 'chain', at: '2026-01-01T01:10:00Z' }) },
    ]);
    expect(await drain(yaml, db, 2)).toBe(2);
    const client = connect({ url: s.clickhouseUrl });
    const names = await client.rows<{ name: string }>(`SELECT name FROM ${db}.events ORDER BY at`);
    expect(names.map((r) => r.name)).toEqual(['first', 'beyond']);
    await client.close();
  });

  it('adopts a matching table and refuses a mismatched one before creating anything', async () => {
    const s = servers();
    const { name: db, client } = await freshDatabase('winnow_opt');
    await client.command({
      query:
        "CREATE TABLE good (event_id UUID, name String, note String DEFAULT '') ENGINE = MergeTree ORDER BY event_id",
    });
    await client.command({
      query: 'CREATE TABLE bad (event_id String, label String) ENGINE = MergeTree ORDER BY event_id',
    });
    const topic = uniqueName('adopt'); // migrate up's pre-flight wants the topic to exist
    await createTopic(topic, 1);
    const cfg = (table: string, name: string): string => `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: ${table}, mode: adopt }
`;
    const ok = await runCli(['migrate', 'up', '--config', await writeConfig(cfg('good', uniqueName('good')))]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('extra column note');
    const badName = uniqueName('bad');
    const bad = await runCli(['migrate', 'up', '--config', await writeConfig(cfg('bad', badName))]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('does not match the configured columns');
    expect(bad.stderr).toContain('column event_id: table has String, configuration says UUID');
    expect(bad.stderr).toContain('missing column name String');
    const created = await client.query({
      query: `SELECT name FROM system.tables WHERE database = '${db}' AND name LIKE 'winnow_${badName}%'`,
      format: 'JSONEachRow',
    });
    expect(await created.json()).toEqual([]);
    const missing = await runCli(['migrate', 'up', '--config', await writeConfig(cfg('absent', uniqueName('absent')))]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
    await client.close();
  });

  it('names the offending key of a bad configuration and exits non-zero', async () => {
    const file = await writeConfig(
      'pipelines:\n  - name: x\n    source: { brokers: [a:1], topics: [t] }\n    columns: [{ name: event_id, type: UUID }]\n    dedup: { window: 1 hour }\n    sink: { table: t }\n    extra: 1\n',
    );
    const r = await runCli(['migrate', 'up', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pipelines[0].dedup.window');
    expect(r.stderr).toContain('pipelines[0].extra');
    const none = await runCli(['migrate', 'up', '--config', '/nonexistent/winnow.yaml']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('/nonexistent/winnow.yaml');
  });
});
