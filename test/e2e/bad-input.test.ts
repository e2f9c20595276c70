/**
 * Bad input and failing dependencies on real servers: oversize messages,
 * deeply nested JSON, invalid UTF-8, keys of the wrong type and empty keys
 * become rows or dead letters and never stop the stream (I4); a deleted topic
 * keeps the daemon serving its API while /readyz and the stats report the
 * failure; refused ClickHouse credentials stop `run` before it starts (its
 * pre-flight).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect } from '../../src/clickhouse/client.ts';
import { parseConfig } from '../../src/config/load.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { runCli, startDaemon } from '../support/cli.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

function config(name: string, topic: string, db: string, sink: string = ''): string {
  const s = servers();
  return `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events${sink} }
    schedule: { interval: 1s }
`;
}

async function writeConfig(yaml: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-bad-')), 'winnow.yaml');
  await writeFile(file, yaml);
  return file;
}

describe('bad input', () => {
  it('routes oversize, deeply nested, invalid UTF-8 and wrongly typed messages without stopping the stream', async () => {
    const { name: db } = await freshDatabase('winnow_bad');
    const topic = uniqueName('bad');
    await createTopic(topic, 1);
    const name = uniqueName('bad');
    const yaml = config(name, topic, db);
    expect((await runCli(['migrate', 'up', '--config', await writeConfig(yaml)])).code).toBe(0);
    const big = 'x'.repeat(900_000);
    const values: Buffer[] = [
      Buffer.from(JSON.stringify({ event_id: uuid(1), user_name: big })), // oversize but valid: a row
      Buffer.from(`{"event_id": "${uuid(2)}", "user_name": "${big}`), // oversize and truncated: a dead letter
      Buffer.from(`{"event_id": "${uuid(3)}", "deep": ${'['.repeat(100_000)}${']'.repeat(100_000)}, "user_name": "d"}`), // too deep to parse
      Buffer.from(
        `{"event_id": "${uuid(4)}", "deep": ${'['.repeat(500)}${']'.repeat(500)}, "user_name": "shallow enough"}`,
      ), // a row
      Buffer.concat([
        Buffer.from(`{"event_id": "${uuid(5)}", "user_name": "`),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"}'),
      ]), // invalid UTF-8
      Buffer.from(`{"event_id": ["${uuid(6)}"], "user_name": "array key"}`), // key of the wrong type
      Buffer.from(`{"event_id": {"id": "${uuid(7)}"}, "user_name": "object key"}`),
      Buffer.from(JSON.stringify({ event_id: uuid(8), user_name: 'after all that' })), // the stream goes on
    ];
    const producer = kafka().producer();
    await producer.connect();
    for (const value of values) await producer.send({ topic, messages: [{ value }] });
    await producer.disconnect();

    const p = parseConfig(yaml, 'test').pipelines[0]!;
    const client = connect({ url: p.sink.url });
    const processor = new Processor(client, p);
    const counts = async (): Promise<{ rows: number; dead: number }> => {
      while (await processor.runOneSlice()) {
        /* drain */
      }
      const [r, d] = await Promise.all([
        client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.events`),
        client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.winnow_${name}_errors`),
      ]);
      return { rows: Number(r[0]?.n), dead: Number(d[0]?.n) };
    };
    expect(
      await waitFor(
        counts,
        (c) => c.rows + c.dead === values.length,
        60_000,
        'every message as a row or a dead letter',
      ),
    ).toEqual({ rows: 3, dead: 5 });
    const rows = await client.rows<{ id: string; len: number }>(
      `SELECT toString(event_id) AS id, length(name) AS len FROM ${db}.events ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: uuid(1), len: 900000 },
      { id: uuid(4), len: 14 },
      { id: uuid(8), len: 14 },
    ]);
    const dead = await client.rows<{ o: string; e: string }>(
      `SELECT _offset AS o, __error AS e FROM ${db}.winnow_${name}_errors ORDER BY _offset`,
    );
    expect(dead.map((d) => Number(d.o))).toEqual([1, 2, 4, 5, 6]);
    expect(dead.map((d) => d.e)).toEqual([
      'malformed JSON',
      'malformed JSON',
      'invalid UTF-8',
      expect.stringContaining('event_id'),
      expect.stringContaining('event_id'),
    ]);
    await client.close();
  });

  it('dead-letters an empty key like a null one, with its reason, also on a dead-letter replay', async () => {
    const s = servers();
    const { name: db } = await freshDatabase('winnow_bad');
    const topic = uniqueName('emptykey');
    await createTopic(topic, 1);
    const name = uniqueName('emptykey');
    const yaml = `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: tenant, type: LowCardinality(String) }
      - { name: order_id, type: String, path: order.id }
      - { name: note, type: String, optional: true }
    dedup: { key: [tenant, order_id], window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
`;
    const file = await writeConfig(yaml);
    expect((await runCli(['migrate', 'up', '--config', file])).code).toBe(0);
    const values = [
      { tenant: 'a', order: { id: '1' }, note: '' }, // a row: an empty value of a column that is no key is fine
      { tenant: 'a', order: { id: '' } }, // empty key column: a dead letter
      { tenant: '', order: { id: '1' } },
      { tenant: 'a', order: { id: null } }, // null, as before
      { tenant: 'a', order: { id: '1' }, note: 'duplicate' },
      { tenant: 'b', order: { id: '1' } }, // a row
    ];
    const producer = kafka().producer();
    await producer.connect();
    await producer.send({ topic, messages: values.map((v) => ({ value: JSON.stringify(v) })) });
    await producer.disconnect();

    const p = parseConfig(yaml, 'test').pipelines[0]!;
    const client = connect({ url: p.sink.url });
    const processor = new Processor(client, p);
    type Counts = { rows: number; dead: number; duplicates: number };
    const drained = async (): Promise<Counts> => {
      while (await processor.runOneSlice()) {
        /* drain */
      }
      const [r, d, dup] = await Promise.all([
        client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.events`),
        client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.winnow_${name}_errors`),
        client.rows<{ n: string }>(`SELECT sum(duplicates) AS n FROM ${db}.winnow_slices WHERE status = 'committed'`),
      ]);
      return { rows: Number(r[0]?.n), dead: Number(d[0]?.n), duplicates: Number(dup[0]?.n) };
    };
    const done = (c: Counts): boolean => c.rows + c.dead + c.duplicates === values.length;
    const counts = await waitFor(drained, done, 60_000, 'every message as a row, a duplicate or a dead letter');
    expect(counts).toEqual({ rows: 2, dead: 3, duplicates: 1 });
    const rows = await client.rows<{ tenant: string; id: string; note: string }>(
      `SELECT tenant, order_id AS id, note FROM ${db}.events ORDER BY tenant`,
    );
    expect(rows).toEqual([
      { tenant: 'a', id: '1', note: '' },
      { tenant: 'b', id: '1', note: '' },
    ]);
    const reasons = async (): Promise<{ o: number; e: string }[]> => {
      const sql = `SELECT _offset AS o, __error AS e FROM ${db}.winnow_${name}_errors ORDER BY _offset`;
      return (await client.rows<{ o: string; e: string }>(sql)).map((d) => ({ o: Number(d.o), e: d.e }));
    };
    const expected = [
      { o: 1, e: 'order_id: empty key at $.order.id' },
      { o: 2, e: 'tenant: empty key at $.tenant' },
      { o: 3, e: 'order_id: missing, null or not a String at $.order.id' },
    ];
    expect(await reasons()).toEqual(expected);
    // Replayed through today's validation, they fail again, for the same reasons.
    const replay = await runCli(['deadletters', 'replay', '--all', '--config', file]);
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain('empty key at $.order.id');
    expect(await reasons()).toEqual(expected);
    await client.close();
  });

  it('does not start when ClickHouse refuses the login: one line names sink.password, not the secret', async () => {
    const { name: db } = await freshDatabase('winnow_bad');
    const topic = uniqueName('auth');
    await createTopic(topic, 1);
    const name = uniqueName('auth');
    const file = await writeConfig(config(name, topic, db, ', user: intruder, password: { env: TEST_CH_PASSWORD }'));
    const secret = `wrong-${uniqueName('pw')}`;
    const env = { TEST_CH_PASSWORD: secret, WINNOW_LEASE_EPOCH_MS: '2000' };
    const r = await runCli(['run', '--config', file, '--port', '0'], env, 60_000);
    expect(r.code).toBe(1);
    // Every line is JSON; the errors are the failed check (its key named) and what it means.
    const lines = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string; key?: string });
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors.map((e) => e.msg)).toEqual([
      expect.stringMatching(/^pipelines\[0\]\.sink\.password \(of "intruder"\): ClickHouse refused the login/),
      'pre-flight failed (1 problem); not started',
    ]);
    expect(errors[0]).toMatchObject({ key: 'pipelines[0].sink.password' });
    expect(errors[0]?.msg).toMatch(/\(check sink\.user and sink\.password\)$/);
    expect(r.stderr + r.stdout).not.toContain(secret); // the secret is never printed
  });

  it('keeps running when its topic is deleted, and /readyz names the problem', async () => {
    const { name: db } = await freshDatabase('winnow_bad');
    const topic = uniqueName('gone');
    await createTopic(topic, 1);
    const name = uniqueName('gone');
    const file = await writeConfig(config(name, topic, db));
    expect((await runCli(['migrate', 'up', '--config', file])).code).toBe(0);
    const daemon = await startDaemon(file, { WINNOW_LEASE_EPOCH_MS: '2000' });
    try {
      const producer = kafka().producer();
      await producer.connect();
      await producer.send({ topic, messages: [{ value: JSON.stringify({ event_id: uuid(1), user_name: 'before' }) }] });
      await producer.disconnect();
      await waitFor(
        async () =>
          ((await (await fetch(`${daemon.api}/api/v1/pipelines/${name}/stats`)).json()) as { inserted: number })
            .inserted,
        (n) => n === 1,
        60_000,
        'the first event',
      );
      const admin = kafka().admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] });
      await admin.disconnect();
      const ready = await waitFor(
        async () => {
          const r = await fetch(`${daemon.api}/readyz`);
          return {
            status: r.status,
            body: (await r.json()) as { checks: Record<string, { ok: boolean; error?: string }> },
          };
        },
        (r) => r.status === 503,
        30_000,
        'readyz to report the deleted topic',
      );
      expect(ready.body.checks[`${name}.kafka`]?.ok).toBe(false);
      const stats = await fetch(`${daemon.api}/api/v1/pipelines/${name}/stats`);
      expect(stats.status).toBe(200);
      expect(((await stats.json()) as { inserted: number }).inserted).toBe(1); // nothing lost
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});
