/**
 * Failures read as one line (issue 11, point 4), on the real servers.
 *
 * - `winnow stats` with a wrong sink.url or password prints one line that
 *   names the key and the URL, no SQL; --verbose adds the cause chain.
 * - `winnow run` with ClickHouse unreachable for 20 s prints a bounded number
 *   of lines, every one JSON; a failed lease claim is not a failed slice;
 *   /readyz says failing, with the error's class.
 * - A final table that refuses every row: /readyz shows ClickHouse's error
 *   without the row values it quotes.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { logLines, runCli, startDaemon } from '../support/cli.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function configFile(
  topic: string,
  db: string,
  sink: { url?: string; extra?: string; schedule?: string } = {},
): Promise<{ file: string; name: string }> {
  const s = servers();
  const name = uniqueName('out');
  const yaml = `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${sink.url ?? s.clickhouseUrl}, database: ${db}, table: events${sink.extra ?? ''} }
    schedule: { interval: 1s${sink.schedule ?? ''} }
`;
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-out-')), 'winnow.yaml');
  await writeFile(file, yaml);
  return { file, name };
}

const nonEmpty = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

describe('failures read as one line', () => {
  it('stats names sink.url and its URL in one line: ClickHouse unreachable, or the password refused', async () => {
    const topic = uniqueName('out');
    await createTopic(topic, 1);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const { file } = await configFile(topic, 'nowhere', { url });
    const r = await runCli(['stats', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const err = nonEmpty(r.stderr);
    process.stderr.write(
      `failure output: stats with a wrong sink.url printed ${err.length} line(s): ${err.join(' | ')}\n`,
    );
    expect(err).toHaveLength(1);
    expect(err[0]).toContain('sink.url');
    expect(err[0]).toContain(url);
    expect(err[0]).toMatch(/connection refused/);
    expect(err[0]).not.toMatch(/SELECT|INSERT|FROM /);

    const verbose = await runCli(['stats', '--config', file, '--verbose']);
    expect(verbose.code).toBe(1);
    const lines = nonEmpty(verbose.stderr);
    expect(lines[0]).toBe(err[0]);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(1).join('\n')).toMatch(/caused by: .*ECONNREFUSED/);
    expect(verbose.stderr).not.toMatch(/SELECT|INSERT|FROM /);

    const { name: db } = await freshDatabase('winnow_out');
    const wrong = await configFile(topic, db, { extra: ', password: { env: TEST_WRONG_PASSWORD }' });
    const pw = await runCli(['stats', '--config', wrong.file], { TEST_WRONG_PASSWORD: 'not-the-password' });
    expect(pw.code).toBe(1);
    const pwLines = nonEmpty(pw.stderr);
    process.stderr.write(
      `failure output: stats with a wrong password printed ${pwLines.length} line(s): ${pwLines.join(' | ')}\n`,
    );
    expect(pwLines).toHaveLength(1);
    expect(pwLines[0]).toContain(`sink.url ${servers().clickhouseUrl}`);
    expect(pwLines[0]).toContain('sink.password');
    expect(pwLines[0]).not.toContain('not-the-password');
    expect(pwLines[0]).not.toMatch(/SELECT|INSERT|FROM /);
  });

  it('the daemon, ClickHouse unreachable: a few JSON lines in 20 s, no "slice failed"; /readyz failing', async () => {
    const topic = uniqueName('down');
    await createTopic(topic, 1);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const { file, name } = await configFile(topic, 'nowhere', { url });
    const daemon = await startDaemon(file, { WINNOW_LEASE_EPOCH_MS: '2000' });
    try {
      await sleep(20_000);
      const r = await fetch(`${daemon.api}/readyz`);
      const body = (await r.json()) as {
        pipelines: Record<string, { state: string; error: { class: string; message: string } | null }>;
      };
      expect(r.status).toBe(503);
      expect(body.pipelines[name]).toMatchObject({ state: 'failing', error: { class: 'CLICKHOUSE/ECONNREFUSED' } });
      expect(body.pipelines[name]?.error?.message).toContain(`sink.url ${url}`);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
    const { lines, other } = logLines(daemon.logs());
    const msgs = lines.map((l) => l.msg).join(' | ');
    const printed = lines.length + other.length;
    process.stderr.write(
      `failure output: the daemon printed ${printed} lines in 20 s, ClickHouse unreachable: ${msgs}\n`,
    );
    expect(other, 'every line is JSON').toEqual([]);
    expect(lines.length).toBeLessThanOrEqual(10);
    expect(lines.filter((l) => l.msg.startsWith('lease claim failed'))).toHaveLength(1);
    expect(lines.filter((l) => l.msg.startsWith('slice failed'))).toHaveLength(0);
    expect(lines.filter((l) => l.level === 'error' || l.level === 'warn').length).toBeLessThanOrEqual(3);
  });

  it('/readyz shows the final table refusing every row without the row values ClickHouse quotes', async () => {
    const { name: db, client } = await freshDatabase('winnow_out');
    const topic = uniqueName('refuse');
    await createTopic(topic, 1);
    const { file, name } = await configFile(topic, db);
    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code, up.stderr).toBe(0);
    await client.command({ query: 'ALTER TABLE events ADD CONSTRAINT refuse_all CHECK length(name) < 0' });
    const producer = kafka().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 16 }, (_, i) => ({
        value: JSON.stringify({ event_id: uuid(i), user_name: `secret-${i}` }),
      })),
    });
    await producer.disconnect();
    const daemon = await startDaemon(file, { WINNOW_LEASE_EPOCH_MS: '2000' });
    try {
      const ready = await waitFor(
        async () => {
          const r = await fetch(`${daemon.api}/readyz`);
          return { status: r.status, text: await r.text() };
        },
        (r) => r.status === 503 && r.text.includes('VIOLATED_CONSTRAINT'),
        90_000,
        'readyz to report the refusing table',
      );
      const body = JSON.parse(ready.text) as {
        pipelines: Record<string, { state: string; error: { class: string; message: string } }>;
      };
      expect(body.pipelines[name]?.state).toBe('failing');
      expect(body.pipelines[name]?.error.class).toBe('CLICKHOUSE/VIOLATED_CONSTRAINT');
      expect(ready.text).not.toContain('secret-');
      expect(ready.text).toContain('Column values: (omitted)');
    } finally {
      expect(await daemon.stop()).toBe(0);
      await client.close();
    }
  });

  it('the daemon checks consistency on its cron schedule; every line is JSON', async () => {
    const { name: db, client } = await freshDatabase('winnow_out');
    const topic = uniqueName('sched');
    await createTopic(topic, 1);
    const { file, name } = await configFile(topic, db, { schedule: ', checkInterval: 1s' });
    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code, up.stderr).toBe(0);
    const producer = kafka().producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 50 }, (_, i) => ({
        value: JSON.stringify({ event_id: uuid(i % 40), user_name: `u${i}` }),
      })),
    });
    await producer.disconnect();
    const daemon = await startDaemon(file, { WINNOW_LEASE_EPOCH_MS: '2000', WINNOW_LOG_LEVEL: 'debug' });
    let checks: { ok: number }[] = [];
    try {
      checks = await waitFor(
        async () => {
          const r = await client.query({
            query: 'SELECT ok FROM winnow_checks WHERE pipeline = {p:String} ORDER BY checked_at',
            query_params: { p: name },
            format: 'JSONEachRow',
          });
          return r.json<{ ok: number }>();
        },
        (rows) => rows.length >= 3,
        90_000,
        'three scheduled consistency checks',
      );
    } finally {
      expect(await daemon.stop()).toBe(0);
      await client.close();
    }
    expect(checks.every((c) => Number(c.ok) === 1)).toBe(true);
    const { other } = logLines(daemon.logs());
    expect(other, "every line is JSON, the scheduler's too").toEqual([]);
    expect(daemon.logs()).not.toMatch(/NODE-CRON|\x1b\[/);
  });
});
