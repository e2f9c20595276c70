/**
 * The lease follows health (issue 11, point 3): two or three `winnow run`
 * processes on one pipeline, on the real servers.
 *
 * - SIGTERM releases the lease: the standby processes within 2 s although the
 *   epoch is the default 15 s (so the lease cannot have run out by itself).
 * - A restarted daemon takes the pipeline at once: it never stands by for its
 *   own previous lease.
 * - SIGKILL: the standby takes over within one lease epoch.
 * - A holder whose slices keep failing (WINNOW_FAULT=fail:afterInsert: its
 *   inserts land, its checkpoints never do) gives up the lease with one line
 *   that says why, and the standby finishes its planned slice with the same
 *   token.
 * - /readyz says processing or standby (200) and failing (503); the holder's
 *   identity names its host, pid, API address and config file.
 *
 * Invariants: one writer (no slice sequence number planned with two slice ids
 * or committed twice); I1/I2 on an exact set of keys (every key once in the
 * final table and in the seen keys), I4 (the committed slices account for
 * every staged message).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { logLines, runCli, startDaemon, type Daemon } from '../support/cli.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

interface Readyz {
  ready: boolean;
  pipelines: Record<
    string,
    { state: string; holder: string | null; error?: { class: string; message: string } | null }
  >;
}

const running = new Set<Daemon>();
afterEach(async () => {
  await Promise.all([...running].map((d) => d.stop('SIGKILL')));
  running.clear();
});

async function start(file: string, env: Record<string, string> = {}): Promise<Daemon> {
  const d = await startDaemon(file, env);
  running.add(d);
  return d;
}

async function stop(d: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const code = await d.stop(signal);
  running.delete(d);
  return code;
}

const lines = (d: Daemon) => logLines(d.logs()).lines;
const first = (d: Daemon, msg: string) => lines(d).find((l) => l.msg.startsWith(msg));
const count = (d: Daemon, msg: string) => lines(d).filter((l) => l.msg.startsWith(msg)).length;
const timeOf = (l: { time: string } | undefined): number => (l ? Date.parse(l.time) : NaN);

async function readyz(d: Daemon): Promise<{ status: number; body: Readyz }> {
  const r = await fetch(`${d.api}/readyz`);
  return { status: r.status, body: (await r.json()) as Readyz };
}

async function waitLog(d: Daemon, msg: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    () => Promise.resolve(count(d, msg)),
    (n) => n > 0,
    timeoutMs,
    `"${msg}" in the log of pid ${d.child.pid}:\n${d.logs()}`,
  );
}

/** A pipeline of its own: topic (2 partitions), database, config file, migrated. */
async function pipeline(label: string): Promise<{ name: string; db: string; topic: string; file: string; client: Db }> {
  const s = servers();
  const { name: db } = await freshDatabase('winnow_failover');
  const topic = uniqueName(label);
  await createTopic(topic, 2);
  const name = uniqueName(label);
  const yaml = `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
    schedule: { interval: 1s, maxSliceRows: 40 }
`;
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-failover-')), 'winnow.yaml');
  await writeFile(file, yaml);
  const up = await runCli(['migrate', 'up', '--config', file]);
  expect(up.code, up.stderr).toBe(0);
  return { name, db, topic, file, client: connect({ url: s.clickhouseUrl }) };
}

/** Keys from..to-1, every third one sent twice and every fifth three times, over both partitions. */
async function produce(topic: string, from: number, to: number): Promise<void> {
  const messages: { partition: number; value: string }[] = [];
  for (let i = from; i < to; i++) {
    const copies = 1 + (i % 3 === 0 ? 1 : 0) + (i % 5 === 0 ? 2 : 0);
    for (let c = 0; c < copies; c++)
      messages.push({ partition: i % 2, value: JSON.stringify({ event_id: uuid(i), user_name: `u${i}` }) });
  }
  const p = kafka().producer();
  await p.connect();
  await p.send({ topic, messages });
  await p.disconnect();
}

/** Waits until every key below `keys` is in the final table, then checks the pipeline's tables exactly. */
async function exact(p: { name: string; db: string; client: Db }, keys: number): Promise<void> {
  const final = `${p.db}.events`;
  await waitFor(
    async () => Number((await p.client.rows<{ n: string }>(`SELECT uniqExact(event_id) AS n FROM ${final}`))[0]?.n),
    (n) => n >= keys,
    90_000,
    `${keys} keys in ${final}`,
  );
  const q = async (sql: string): Promise<Record<string, string>[]> =>
    (await p.client.rows<Record<string, unknown>>(sql)).map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])),
    );
  const [f] = await q(
    `SELECT count() AS rows, uniqExact(event_id) AS ids, min(event_id) AS lo, max(event_id) AS hi FROM ${final}`,
  );
  expect(f).toEqual({ rows: String(keys), ids: String(keys), lo: uuid(0), hi: uuid(keys - 1) });
  const [seen] = await q(`SELECT count() AS n FROM ${p.db}.winnow_${p.name}_seen`);
  expect(seen?.['n']).toBe(String(keys));
  const slices = `${p.db}.winnow_slices`;
  expect(
    await q(
      `SELECT seq FROM ${slices} WHERE pipeline = '${p.name}' AND status = 'committed' GROUP BY seq HAVING count() > 1`,
    ),
  ).toEqual([]);
  expect(
    await q(`SELECT seq FROM ${slices} WHERE pipeline = '${p.name}' GROUP BY seq HAVING uniqExact(slice_id) > 1`),
  ).toEqual([]);
  const [staged] = await q(`SELECT uniqExact(_topic, _partition, _offset) AS n FROM ${p.db}.winnow_${p.name}_staging`);
  await waitFor(
    async () =>
      (await q(`SELECT sum(rows_in) AS n FROM ${slices} WHERE pipeline = '${p.name}' AND status = 'committed'`))[0]?.[
        'n'
      ],
    (n) => n === staged?.['n'],
    60_000,
    'the committed slices to account for every staged message',
  );
}

describe('the lease follows health', () => {
  it('SIGTERM: the standby processes within 2 s; a restarted daemon holds at once (15 s epochs)', async () => {
    const p = await pipeline('term');
    try {
      const a = await start(p.file);
      await waitLog(a, 'processing');
      const b = await start(p.file);
      await waitLog(b, 'standing by');

      const [ra, rb] = await Promise.all([readyz(a), readyz(b)]);
      expect(ra.status, JSON.stringify(ra.body)).toBe(200);
      expect(ra.body.pipelines[p.name]?.state).toBe('processing');
      expect(rb.status, JSON.stringify(rb.body)).toBe(200);
      expect(rb.body.pipelines[p.name]?.state).toBe('standby');
      // The standby names the holder: host, pid, API address and config file.
      const holder = rb.body.pipelines[p.name]?.holder ?? '';
      expect(holder).toContain(`host=${os.hostname()}`);
      expect(holder).toContain(`pid=${a.child.pid}`);
      expect(holder).toContain(`api=${a.api}`);
      expect(holder).toContain(`config=${p.file}`);

      await produce(p.topic, 0, 100);
      await exact(p, 100);

      const termAt = Date.now();
      expect(await stop(a)).toBe(0);
      expect(count(a, 'lease released')).toBe(1);
      await waitLog(b, 'processing', 20_000);
      const handover = timeOf(first(b, 'processing')) - termAt;
      process.stderr.write(
        `failover: SIGTERM of the holder -> standby processing after ${handover} ms (epoch 15000 ms)\n`,
      );
      expect(handover).toBeLessThanOrEqual(2_000);
      expect(count(b, 'processing')).toBe(1);

      await produce(p.topic, 100, 200);
      await exact(p, 200);

      // A restart: the new daemon does not wait for the lease its predecessor held.
      expect(await stop(b)).toBe(0);
      const c = await start(p.file);
      await waitLog(c, 'processing', 20_000);
      const restart = timeOf(first(c, 'processing')) - timeOf(first(c, 'winnow running'));
      process.stderr.write(`failover: restarted daemon processing ${restart} ms after it started serving\n`);
      expect(count(c, 'standing by')).toBe(0);
      expect(restart).toBeLessThanOrEqual(2_000);
      await produce(p.topic, 200, 300);
      await exact(p, 300);
      expect(await stop(c)).toBe(0);
      for (const d of [a, b, c]) expect(logLines(d.logs()).other).toEqual([]);
    } finally {
      await p.client.close();
    }
  });

  it('a holder that cannot commit gives up the lease; the standby finishes; SIGKILL: takeover <= 1 epoch', async () => {
    const epochMs = 4_000;
    const env = { WINNOW_LEASE_EPOCH_MS: String(epochMs) };
    const p = await pipeline('sick');
    try {
      // The sick daemon's inserts land but it never records a committed checkpoint.
      const sick = await start(p.file, { ...env, WINNOW_FAULT: 'fail:afterInsert' });
      await waitLog(sick, 'processing');
      const healthy = await start(p.file, env);
      await waitLog(healthy, 'standing by');

      await produce(p.topic, 0, 120);
      await waitLog(sick, 'giving up the lease', 60_000);
      await exact(p, 120);

      const failedAt = timeOf(first(sick, 'slice failed'));
      const gaveUpAt = timeOf(first(sick, 'giving up the lease'));
      const tookOverAt = timeOf(first(healthy, 'processing'));
      process.stderr.write(
        `failover: sick holder failed first at +0 ms, gave up the lease at +${gaveUpAt - failedAt} ms, ` +
          `the standby processed at +${tookOverAt - failedAt} ms\n`,
      );
      expect(gaveUpAt - failedAt).toBeGreaterThanOrEqual(2 * epochMs);
      expect(tookOverAt - gaveUpAt).toBeLessThanOrEqual(2_000);
      expect(count(sick, 'slice failed'), 'a failure that goes on is logged once').toBe(1);
      expect(count(sick, 'giving up the lease')).toBe(1);
      const resumed = lines(healthy).filter((l) => l.msg === 'slice' && l['resumed'] === true);
      expect(resumed.length, "the standby finished the sick daemon's planned slice").toBeGreaterThan(0);

      const [rs, rh] = await Promise.all([readyz(sick), readyz(healthy)]);
      expect(rs.status, JSON.stringify(rs.body)).toBe(503);
      expect(rs.body.pipelines[p.name]).toMatchObject({ state: 'failing', error: { class: 'INJECTED_FAULT' } });
      expect(rs.body.pipelines[p.name]?.error?.message).toContain('afterInsert');
      expect(rh.status, JSON.stringify(rh.body)).toBe(200);
      expect(rh.body.pipelines[p.name]?.state).toBe('processing');

      // The sick daemon leaves; a healthy standby joins; the holder dies.
      expect(await stop(sick)).toBe(0);
      const standby = await start(p.file, env);
      await waitLog(standby, 'standing by');
      await produce(p.topic, 120, 200);
      await exact(p, 200);
      healthy.child.kill('SIGKILL');
      const killedAt = Date.now();
      running.delete(healthy);
      await waitLog(standby, 'processing', 3 * epochMs);
      const takeover = timeOf(first(standby, 'processing')) - killedAt;
      process.stderr.write(
        `failover: SIGKILL of the holder -> standby processing after ${takeover} ms (epoch ${epochMs} ms)\n`,
      );
      expect(takeover).toBeLessThanOrEqual(epochMs);
      await produce(p.topic, 200, 260);
      await exact(p, 260);
      expect(await stop(standby)).toBe(0);
    } finally {
      await p.client.close();
    }
  });
});
