/**
 * The whole pipeline on real servers, driven through the `winnow` command:
 * migrate up, run the daemon, feed a seeded stream with a known duplicate
 * structure, then compare with the oracle.
 * Invariants checked: I1 uniqueness, I2 completeness, I3 first wins (exact
 * final table), I4 nothing lost (dead letters hold exactly the malformed
 * messages; stats reconcile), and migrate's idempotence.
 */
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickhouse, createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { runCli, startDaemon, type Daemon } from '../support/cli.ts';
import { expectedRows, generate, MALFORMED, sortRows, type FinalRow, type GenMessage } from '../support/oracle.ts';

const WINDOW_MS = 10 * 60_000;
const ORIGINALS = 1500;

interface Stats {
  messagesConsumed: number;
  staged: number;
  inserted: number;
  duplicatesDropped: number;
  deadLetters: number;
  pendingRows: number;
  partitions: { topic: string; partition: number; lag: number | null }[];
}

async function produce(msgs: GenMessage[]): Promise<void> {
  const producer = kafka().producer();
  await producer.connect();
  try {
    for (let i = 0; i < msgs.length; i += 500) {
      const batch = msgs.slice(i, i + 500);
      const byTopic = new Map<string, GenMessage[]>();
      for (const m of batch) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m]);
      await producer.sendBatch({
        topicMessages: [...byTopic.entries()].map(([topic, ms]) => ({
          topic,
          messages: ms.map((m) => ({ partition: m.partition, timestamp: String(m.timestamp), value: m.value })),
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

describe('pipeline end to end (users scenario, 3+1 partitions over two topics)', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let configFile: string;
  let daemon: Daemon | undefined;
  const name = uniqueName('e2e');
  const t1 = uniqueName('users_a');
  const t2 = uniqueName('users_b');
  const phases = generate(20261127, ORIGINALS, {
    topics: [
      { name: t1, partitions: 3 },
      { name: t2, partitions: 1 },
    ],
    windowMs: WINDOW_MS,
    baseTime: Date.now() - 5 * 60_000,
  });

  const stats = async (): Promise<Stats> => {
    const res = await fetch(`${daemon!.api}/api/v1/pipelines/${name}/stats`);
    expect(res.status).toBe(200);
    return (await res.json()) as Stats;
  };
  const quiescent = async (produced: number, valid: number, malformed: number): Promise<Stats> =>
    waitFor(
      stats,
      (s) =>
        s.messagesConsumed === produced &&
        s.staged === valid &&
        s.deadLetters === malformed &&
        s.pendingRows === 0 &&
        s.inserted + s.duplicatesDropped === valid,
      120_000,
      `pipeline to process ${produced} messages`,
    );

  beforeAll(async () => {
    db = await freshDatabase('winnow_e2e');
    await createTopic(t1, 3);
    await createTopic(t2, 1);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-e2e-'));
    configFile = path.join(dir, 'winnow.yaml');
    const s = servers();
    await writeFile(
      configFile,
      `pipelines:
  - name: ${name}
    source:
      brokers: [${s.kafkaBrokersForClickHouse.join(', ')}]
      topics: [${t1}, ${t2}]
    columns:
      - { name: event_id, type: UUID }
      - { name: user_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: email, type: String, path: user_email }
      - { name: created_at, type: DateTime, path: created_at }
    dedup:
      key: [event_id]
      window: 10m
    sink:
      url: ${s.clickhouseUrl}
      database: ${db.name}
      table: users_dedup
    schedule:
      interval: 1s
`,
    );
  });

  afterAll(async () => {
    if (daemon) expect(await daemon.stop()).toBe(0);
    await db?.client.close();
  });

  it('migrate up provisions everything, twice and concurrently without error', async () => {
    const dry = await runCli(['migrate', 'up', '--config', configFile, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('ENGINE = Kafka');
    const [a, b] = await Promise.all([
      runCli(['migrate', 'up', '--config', configFile]),
      runCli(['migrate', 'up', '--config', configFile]),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const again = await runCli(['migrate', 'up', '--config', configFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('up to date');
    const status = await runCli(['migrate', 'status', '--config', configFile]);
    expect(status.stdout).not.toContain('pending');
  });

  it("keeps exactly the oracle's rows and dead-letters exactly the malformed messages", async () => {
    daemon = await startDaemon(configFile);
    const [phase1 = [], phase2 = []] = phases;
    const valid1 = phase1.filter((m) => m.kind !== 'malformed').length;
    await produce(phase1);
    await quiescent(phase1.length, valid1, MALFORMED.length);
    await produce(phase2);
    const all = phase1.length + phase2.length;
    const final = await quiescent(all, all - MALFORMED.length, MALFORMED.length);

    const expected = expectedRows(phases, WINDOW_MS);
    const rows = await (
      await db.client.query({
        query:
          'SELECT toString(event_id) AS event_id, toString(user_id) AS user_id, name, email, toString(created_at) AS created_at FROM users_dedup',
        format: 'JSONEachRow',
      })
    ).json<FinalRow>();
    // I1-I3: the final table is exactly the oracle's (uniqueness, completeness, first wins)
    expect(rows.length).toBe(expected.length);
    expect(sortRows(rows)).toEqual(sortRows(expected));
    // The structure was really exercised.
    const kinds = new Set([...phase1, ...phase2].map((m) => m.kind));
    for (const k of [
      'retry-in-window',
      'resend',
      'cross-partition',
      'cross-topic',
      'beyond-window',
      'chain',
      'malformed',
    ])
      expect(kinds).toContain(k);
    expect(new Set(rows.map((r) => r.event_id)).size).toBeLessThan(rows.length); // beyond-window keys appear twice

    // I4: dead letters hold exactly the malformed messages, each with a reason
    const dead = await (
      await db.client.query({
        query: `SELECT _raw, __error FROM winnow_${name}_errors ORDER BY _topic, _partition, _offset`,
        format: 'JSONEachRow',
      })
    ).json<{ _raw: string; __error: string }>();
    expect(dead.length).toBe(MALFORMED.length);
    for (const d of dead) expect(d.__error).not.toBe('');
    const rawText = (b: Buffer): string => b.toString('utf8');
    expect(dead.map((d) => d._raw).sort()).toEqual(MALFORMED.map(rawText).sort());

    // The stats API reports the oracle's counts.
    const valid = all - MALFORMED.length;
    expect(final).toMatchObject({
      messagesConsumed: all,
      staged: valid,
      inserted: expected.length,
      duplicatesDropped: valid - expected.length,
      deadLetters: MALFORMED.length,
      pendingRows: 0,
    });
    expect(final.partitions.map((p) => `${p.topic}/${p.partition}`).sort()).toEqual(
      [`${t1}/0`, `${t1}/1`, `${t1}/2`, `${t2}/0`].sort(),
    );
    process.stderr.write(
      `e2e: produced ${all} (${valid} valid, ${MALFORMED.length} malformed), kept ${expected.length}, dropped ${valid - expected.length}\n`,
    );

    // The CLI prints the same numbers.
    const cli = await runCli(['stats', '--config', configFile, '--json']);
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as { pipelines: Stats[] }).pipelines[0]).toMatchObject({
      inserted: expected.length,
      deadLetters: MALFORMED.length,
    });
    void clickhouse;
  });

  it('SIGTERM stops the daemon with exit code 0', async () => {
    expect(await daemon!.stop('SIGTERM')).toBe(0);
    expect(daemon!.logs()).toContain('"msg":"stopped"');
    daemon = undefined;
  });
});
