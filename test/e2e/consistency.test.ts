/**
 * The checker, replays and dead letters on real servers. Invariants: I1 and I2
 * (checker verdicts against damage we inflict on purpose), I4 (an empty
 * message the Kafka engine skips becomes a dead letter; re-ingested dead
 * letters are counted once), I5 (replays from an offset, from a timestamp and
 * after a Kafka-engine rewind add no row).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { PipelineConfig } from '../../src/config/schema.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { runCli } from '../support/cli.ts';

interface Report {
  ok: boolean;
  uniqueness: { violations: number };
  completeness: { missing: number };
  seenVsFinal: {
    keptNotInFinal: number;
    reinsertedFromStaging: number;
    finalWithoutSeen: number;
    seenRestored: number;
  };
  counts: { ok: boolean; finalRows: number };
  proof: 'counts' | 'lookups';
  offsets: { checked: boolean; partitions: { gapOffsets: number; emptyDeadLettered: number; lost: number[] }[] };
}

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

describe('checker, replay and dead letters', () => {
  const name = uniqueName('cons');
  const topic = uniqueName('cons');
  let db: string;
  let file: string;
  let yaml: string;
  let p: PipelineConfig;
  let client: Db;
  const env = { WINNOW_LEASE_EPOCH_MS: '2000' };

  const drain = async (rows: number): Promise<void> => {
    const processor = new Processor(client, p);
    await waitFor(
      async () => {
        while (await processor.runOneSlice()) {
          /* drain */
        }
        const r = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.events`);
        return Number(r[0]?.n ?? 0);
      },
      (n) => n >= rows,
      60_000,
      `${rows} final rows`,
    );
  };
  const check = async (...flags: string[]): Promise<Report> => {
    const r = await runCli(['check', '--config', file, '--json', ...flags], env);
    expect([0, 4], r.stderr).toContain(r.code);
    return (JSON.parse(r.stdout) as { reports: Report[] }).reports[0]!;
  };
  const finalRows = async (): Promise<string[]> =>
    (
      await client.rows<{ r: string }>(`SELECT concat(toString(event_id), ' ', name) AS r FROM ${db}.events ORDER BY r`)
    ).map((x) => x.r);

  beforeAll(async () => {
    const s = servers();
    db = (await freshDatabase('winnow_cons')).name;
    await createTopic(topic, 2);
    yaml = `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: email, type: String, path: user_email }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
    schedule: { maxSliceRows: 50 }
`;
    file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-cons-')), 'winnow.yaml');
    await writeFile(file, yaml);
    p = parseConfig(yaml, 'test').pipelines[0]!;
    client = connect({ url: s.clickhouseUrl });
    const up = await runCli(['migrate', 'up', '--config', file], env);
    expect(up.code, up.stderr).toBe(0);
    // 200 events, every tenth sent twice, one empty message, one without email.
    const producer = kafka().producer();
    await producer.connect();
    const messages: { partition: number; value: string | null }[] = [];
    for (let i = 0; i < 200; i++) {
      const v = JSON.stringify({ event_id: uuid(i), user_name: `n${i}`, user_email: `e${i}@x` });
      messages.push({ partition: i % 2, value: v });
      if (i % 10 === 0) messages.push({ partition: i % 2, value: v });
    }
    messages.push({ partition: 0, value: '' });
    messages.push({ partition: 1, value: JSON.stringify({ event_id: uuid(999), user_name: 'no-email' }) });
    messages.push({
      partition: 0,
      value: JSON.stringify({ event_id: uuid(200), user_name: 'n200', user_email: 'e200@x' }),
    });
    await producer.send({ topic, messages });
    await producer.disconnect();
    await drain(201);
  });

  afterAll(async () => {
    await client?.close();
  });

  it('finds a healthy pipeline consistent, and turns the skipped empty message into a dead letter', async () => {
    const r = await check();
    expect(r.uniqueness.violations).toBe(0);
    expect(r.completeness.missing).toBe(0);
    expect(r.seenVsFinal).toMatchObject({ keptNotInFinal: 0, finalWithoutSeen: 0 });
    expect(r.counts).toMatchObject({ ok: true, finalRows: 201 });
    expect(r.offsets.checked).toBe(true);
    const gaps = r.offsets.partitions.reduce((s, x) => s + x.gapOffsets, 0);
    expect(gaps).toBe(1);
    expect(r.offsets.partitions.reduce((s, x) => s + x.emptyDeadLettered, 0)).toBe(1);
    expect(r.offsets.partitions.flatMap((x) => x.lost)).toEqual([]);
    expect(r.ok).toBe(true);
    const dead = await client.rows<{ e: string }>(`SELECT __error AS e FROM ${db}.winnow_${name}_errors ORDER BY e`);
    expect(dead.map((d) => d.e)).toEqual([
      expect.stringContaining('email: missing'),
      expect.stringContaining('empty message'),
    ]);
    // The second check finds the gap accounted for.
    const again = await check();
    expect(again.offsets.partitions.reduce((s, x) => s + x.gapOffsets, 0)).toBe(0);
  });

  it('restores seen keys lost after the final insert, so a replay cannot double those rows', async () => {
    const before = await finalRows();
    await client.command(
      `DELETE FROM ${db}.winnow_${name}_seen WHERE name_placeholder = 1`.replace(
        'name_placeholder = 1',
        `event_id IN ('${uuid(3)}', '${uuid(4)}', '${uuid(5)}')`,
      ),
      {},
      { mutations_sync: '2' },
    );
    // Damage to keys processed before the last consistent check: only a full check looks at them.
    const r = await check('--full');
    expect(r.seenVsFinal.finalWithoutSeen).toBe(3);
    expect(r.seenVsFinal.seenRestored).toBe(3);
    const replay = await runCli(
      ['replay', '--config', file, '--from-offsets', `${topic}/0:0,${topic}/1:0`, '--json'],
      env,
    );
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ inserted: 0 });
    expect(await finalRows()).toEqual(before);
    expect((await check()).ok).toBe(true);
  });

  it('re-inserts final rows that went missing, from staging', async () => {
    const before = await finalRows();
    await client.command(
      `DELETE FROM ${db}.events WHERE event_id IN ('${uuid(7)}', '${uuid(8)}')`,
      {},
      { mutations_sync: '2' },
    );
    const r = await check();
    expect(r.seenVsFinal).toMatchObject({ keptNotInFinal: 2, reinsertedFromStaging: 2 });
    expect(await finalRows()).toEqual(before);
    expect((await check()).ok).toBe(true);
  });

  it('replays from a timestamp over processed data without adding a row', async () => {
    const before = await finalRows();
    const replay = await runCli(
      ['replay', '--config', file, '--from-timestamp', new Date(Date.now() - 3_600_000).toISOString(), '--json'],
      env,
    );
    expect(replay.code, replay.stderr).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ inserted: 0, rowsIn: 221 });
    expect(await finalRows()).toEqual(before);
  });

  it('rewinds the Kafka engine when staging no longer holds the range, still adding nothing', async () => {
    const before = await finalRows();
    await client.command(
      `DELETE FROM ${db}.winnow_${name}_staging WHERE _partition = 1 AND _offset < 20`,
      {},
      { mutations_sync: '2' },
    );
    const replay = await runCli(['replay', '--config', file, '--from-offsets', `${topic}/1:0`, '--json'], env);
    expect(replay.code, replay.stderr).toBe(0);
    const result = JSON.parse(replay.stdout) as { inserted: number; rewound: unknown[] };
    expect(result.rewound).toEqual([{ topic, partition: 1, offset: 0 }]);
    expect(result.inserted).toBe(0);
    expect(await finalRows()).toEqual(before);
  });

  it('re-ingests a dead letter once its cause is fixed', async () => {
    const list = await runCli(['deadletters', 'list', '--config', file, '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { total: number }).total).toBe(2);
    // Fix: email becomes optional. The empty message stays a dead letter.
    const fixed = yaml.replace(
      '{ name: email, type: String, path: user_email }',
      '{ name: email, type: String, path: user_email, optional: true }',
    );
    const fixedFile = file.replace('winnow.yaml', 'fixed.yaml');
    await writeFile(fixedFile, fixed);
    const r = await runCli(['deadletters', 'replay', '--config', fixedFile, '--all', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      selected: number;
      reingested: number;
      stillFailing: number;
      waitingForSlice: number;
    };
    // The message was the head of its partition, ahead of the watermark: the next slice takes it.
    expect(out).toMatchObject({ selected: 2, reingested: 1, stillFailing: 1, waitingForSlice: 1 });
    await drain(202);
    expect(await finalRows()).toContain(`${uuid(999)} no-email`);
    const stats = await runCli(['stats', '--config', fixedFile, '--json'], env);
    expect(JSON.parse(stats.stdout)).toMatchObject({ pipelines: [{ deadLetters: 1 }] });
  });

  it('an incremental check proves a healthy scope by counts, and damage in its scope still sends it to the lookups, which repair', async () => {
    const producer = kafka().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [300, 301, 302, 303].map((i) => ({
        partition: i % 2,
        value: JSON.stringify({ event_id: uuid(i), user_name: `n${i}`, user_email: `e${i}@x` }),
      })),
    });
    await producer.disconnect();
    await drain(206);
    const before = await finalRows();
    // A seen key the new slices wrote goes missing: the cheap proof finds its staged key unrepresented.
    await client.command(
      `DELETE FROM ${db}.winnow_${name}_seen WHERE event_id = '${uuid(301)}'`,
      {},
      { mutations_sync: '2' },
    );
    const r = await check();
    expect(r.proof).toBe('lookups');
    expect(r.seenVsFinal).toMatchObject({ finalWithoutSeen: 1, seenRestored: 1 });
    // The same scope again (the last consistent check is older), now proved by the counts alone.
    const healthy = await check();
    expect(healthy).toMatchObject({ ok: true, proof: 'counts' });
    // A final row deleted by hand: the counts no longer reconcile, the lookups find and re-insert it.
    await client.command(`DELETE FROM ${db}.events WHERE event_id = '${uuid(302)}'`, {}, { mutations_sync: '2' });
    const lost = await check();
    expect(lost.proof).toBe('lookups');
    expect(lost.seenVsFinal).toMatchObject({ keptNotInFinal: 1, reinsertedFromStaging: 1 });
    expect(await finalRows()).toEqual(before);
    expect(await check()).toMatchObject({ ok: true });
  });
});
