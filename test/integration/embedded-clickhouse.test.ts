/**
 * The embedded ClickHouse against itself: a real server on free ports in a
 * temporary directory, started and stopped here (no global setup). A failing
 * run leaves the directory, logs included, for inspection.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedClickHouse, type RunningClickHouse } from '../../dev/clickhouse.ts';
import { WinnowError } from '../../src/errors.ts';

const db = `test_embedded_${randomBytes(4).toString('hex')}`;
const USER = { name: 'winnow_test', password: `pw-${randomBytes(6).toString('hex')}` };

let root: string;
let keepRoot = false;
let server: RunningClickHouse | undefined;
const started: RunningClickHouse[] = [];

async function start(
  dataDir: string,
  extra: Partial<Parameters<typeof startEmbeddedClickHouse>[0]> = {},
): Promise<RunningClickHouse> {
  const ch = await startEmbeddedClickHouse({ dataDir, httpPort: 0, tcpPort: 0, users: [USER], ...extra });
  started.push(ch);
  return ch;
}

async function query(
  ch: RunningClickHouse,
  sql: string,
  auth: { user: string; password: string } = { user: 'default', password: '' },
): Promise<{ status: number; body: string }> {
  const res = await fetch(`${ch.url}/?database=${db}`, {
    method: 'POST',
    body: sql,
    headers: { 'X-ClickHouse-User': auth.user, 'X-ClickHouse-Key': auth.password, connection: 'close' },
  });
  return { status: res.status, body: await res.text() };
}

async function ok(ch: RunningClickHouse, sql: string): Promise<string> {
  const { status, body } = await query(ch, sql);
  if (status !== 200) throw new Error(`ClickHouse ${status} for ${sql}: ${body}`);
  return body;
}

/** Pids of live embedded-ClickHouse children serving dataDir (from /proc; Linux). */
async function childPids(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('clickhouse-child.ts') && cmdline.includes(JSON.stringify(dataDir))) pids.push(Number(entry));
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function rejection(p: Promise<unknown>): Promise<WinnowError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WinnowError);
  return err as WinnowError;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'winnow-embedded-ch-'));
});

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    keepRoot = true;
  });
});

afterAll(async () => {
  await Promise.all(started.map((ch) => ch.stop()));
  if (keepRoot) process.stderr.write(`embedded ClickHouse test failed; its files are in ${root}\n`);
  else await rm(root, { recursive: true, force: true });
});

describe('embedded ClickHouse', () => {
  let dataDir: string;

  it('starts on free ports and reports its version', async () => {
    dataDir = path.join(root, 'clickhouse');
    const t0 = Date.now();
    server = await start(dataDir);
    process.stderr.write(`embedded ClickHouse ${server.version} ready in ${Date.now() - t0} ms at ${server.url}\n`);

    expect(server.host).toBe('127.0.0.1');
    expect(server.httpPort).toBeGreaterThan(0);
    expect(server.tcpPort).toBeGreaterThan(0);
    expect(server.httpPort).not.toBe(server.tcpPort);
    expect(server.url).toBe(`http://127.0.0.1:${server.httpPort}`);
    expect(server.logFile).toBe(path.join(root, 'clickhouse.log'));
    expect(Number(server.version.split('.')[0])).toBeGreaterThanOrEqual(26);
    expect(await childPids(dataDir)).toEqual([server.pid]);
    // The native TCP listener is up too.
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(server!.tcpPort, server!.host, () => {
        socket.end();
        resolve();
      });
      socket.once('error', reject);
    });
  });

  it('runs MergeTree with TTL and a materialized view', async () => {
    const ch = server!;
    const res = await fetch(`${ch.url}/`, {
      method: 'POST',
      body: `CREATE DATABASE ${db}`,
      headers: { connection: 'close' },
    });
    expect(res.status, await res.text()).toBe(200);
    await ok(
      ch,
      `CREATE TABLE events (id UInt64, kind String, ts DateTime)
       ENGINE = MergeTree ORDER BY id TTL ts + INTERVAL 1 DAY`,
    );
    await ok(ch, 'CREATE TABLE counts (kind String, n UInt64) ENGINE = SummingMergeTree ORDER BY kind');
    await ok(ch, 'CREATE MATERIALIZED VIEW counts_mv TO counts AS SELECT kind, count() AS n FROM events GROUP BY kind');
    await ok(
      ch,
      `INSERT INTO events VALUES
         (1, 'a', now()), (2, 'a', now()), (3, 'b', now()),
         (4, 'old', now() - INTERVAL 3 DAY), (5, 'old', now() - INTERVAL 3 DAY)`,
    );

    expect(await ok(ch, 'SELECT kind, sum(n) FROM counts GROUP BY kind ORDER BY kind FORMAT CSV')).toBe(
      '"a",2\n"b",1\n"old",2\n',
    );
    // Expired rows go at the next merge; FINAL forces one instead of waiting.
    await ok(ch, 'OPTIMIZE TABLE events FINAL');
    expect(await ok(ch, 'SELECT groupArray(id) FROM (SELECT id FROM events ORDER BY id) FORMAT CSV')).toBe(
      '"[1,2,3]"\n',
    );
    expect(
      await ok(
        ch,
        "SELECT engine_full LIKE '%TTL%' FROM system.tables WHERE database = currentDatabase() AND name = 'events'",
      ),
    ).toBe('1\n');
  });

  it('accepts a configured user with its password and rejects a wrong one', async () => {
    const ch = server!;
    const good = await query(ch, 'SELECT currentUser(), count() FROM events', {
      user: USER.name,
      password: USER.password,
    });
    expect(good).toEqual({ status: 200, body: `${USER.name}\t3\n` });

    const bad = await query(ch, 'SELECT 1', { user: USER.name, password: 'wrong' });
    expect(bad.status).not.toBe(200);
    expect(bad.body).toContain('AUTHENTICATION_FAILED');

    // `default` stays password-less (clickhouse-local's own session needs it).
    expect(await query(ch, 'SELECT currentUser()')).toEqual({ status: 200, body: 'default\n' });
  });

  it('refuses a second instance on the same data directory, leaving no process behind', async () => {
    const err = await rejection(start(dataDir));
    expect(err.code).toBe('DATA_DIR_LOCKED');
    expect(err.message).toBe(`ClickHouse data directory ${dataDir} is in use by another instance (pid ${server!.pid})`);
    expect(err.hint).toContain('winnow dev down');
    expect(await childPids(dataDir)).toEqual([server!.pid]);
    expect((await query(server!, 'SELECT count() FROM events')).body).toBe('3\n');
  });

  it('refuses a port that is taken before spawning anything', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const otherDir = path.join(root, 'port-taken');
    try {
      const err = await rejection(start(otherDir, { httpPort: port }));
      expect(err.code).toBe('PORT_IN_USE');
      expect(err.message).toBe(`ClickHouse HTTP port ${port} on 127.0.0.1 is already in use`);
      expect(err.hint).toContain('--clickhouse-http-port');
      expect(await childPids(otherDir)).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('reports a server that dies during start-up with the end of its log', async () => {
    const brokenDir = path.join(root, 'broken');
    // ClickHouse cannot open its status file when a directory sits there.
    await mkdir(path.join(brokenDir, 'status'), { recursive: true });
    const err = await rejection(start(brokenDir));
    expect(err.code).toBe('PROCESS_EXITED');
    expect(err.message).toContain(`Cannot open file ${path.join(brokenDir, 'status')}`);
    expect(err.hint).toBe(`see ${path.join(root, 'broken.log')}`);
    expect(await childPids(brokenDir)).toEqual([]);
  });

  it('kills a server that is not ready in time', async () => {
    const slowDir = path.join(root, 'slow');
    const err = await rejection(start(slowDir, { readyTimeoutMs: 50 }));
    expect(err.code).toBe('NOT_READY');
    expect(err.message).toBe('ClickHouse did not become ready within 50 ms');
    expect(await childPids(slowDir)).toEqual([]);
  });

  it('stops cleanly, leaving no process, and stop() is idempotent', async () => {
    const ch = server!;
    const t0 = Date.now();
    await ch.stop();
    process.stderr.write(`embedded ClickHouse stopped in ${Date.now() - t0} ms\n`);
    expect(isAlive(ch.pid)).toBe(false);
    expect(await childPids(dataDir)).toEqual([]);
    await ch.stop();
    await expect(fetch(`${ch.url}/ping`)).rejects.toThrow();
    expect(await readFile(ch.logFile, 'utf8')).toContain('winnow clickhouse-child: stdin closed, ClickHouse stopped');
  });

  it('keeps the data across a restart on the same directory', async () => {
    server = await start(dataDir);
    expect(await ok(server, 'SELECT groupArray(id) FROM (SELECT id FROM events ORDER BY id) FORMAT CSV')).toBe(
      '"[1,2,3]"\n',
    );
    expect(await ok(server, 'SELECT kind, sum(n) FROM counts GROUP BY kind ORDER BY kind FORMAT CSV')).toBe(
      '"a",2\n"b",1\n"old",2\n',
    );
    // The view still feeds its target after the restart.
    await ok(server, "INSERT INTO events VALUES (6, 'b', now())");
    expect(await ok(server, "SELECT sum(n) FROM counts WHERE kind = 'b'")).toBe('2\n');
    await server.stop();
    expect(isAlive(server.pid)).toBe(false);
  });
});
