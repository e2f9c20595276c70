/**
 * Why one file over 300 lines: its cases share the servers of the first case; a split would start a second pair.
 *
 * `winnow dev up | down | status` as a user runs it: the real CLI (from the sources: test/support/cli.ts)
 * in a child process, from a working directory that is not this repository, with
 * every port 0 (never 8123/9000/9092/9093, which a developer's own `winnow dev up`
 * may hold) and state dirs under one temp root.
 *
 * Proves: `up --json` returns once both servers answer (ClickHouse >= 26 over HTTP,
 * Kafka over PLAINTEXT and SASL/PLAIN) and leaves them running without itself; a
 * second `up` reuses them; `status` reports them; `down` leaves no process at all.
 * And each failure (port taken, no Java, data dir locked, readiness timeout) ends in
 * one line `winnow dev: error: <cause> (<fix>)`, a non-zero exit, no process left
 * behind and no dev.json.
 *
 * Cases run in order and share the servers of the first. afterAll stops whatever a
 * failed case left, by `dev down` and then by the pids recorded here, never by name.
 *
 * One file of ~300 lines on purpose: its cases depend on each other's servers and
 * state, and splitting it would start a second pair (minutes on 2 cores). The
 * /proc helpers live in test/support/processes.ts.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../support/cli.ts';
import { descendants, isAlive, processesMentioning, waitGone } from '../support/processes.ts';

const FREE_PORTS = [
  '--clickhouse-http-port',
  '0',
  '--clickhouse-tcp-port',
  '0',
  '--kafka-port',
  '0',
  '--kafka-sasl-port',
  '0',
];
const ERROR_LINE = /^winnow dev: error: .+ \(.+\)$/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

interface UpJson {
  supervisorPid: number;
  stateDir: string;
  reused: boolean;
  clickhouse: { url: string; tcpPort: number; pid: number; version: string };
  kafka: { brokers: string[]; saslBrokers: string[]; pid: number; sasl: { username: string; password: string } };
  running: { supervisor: boolean; clickhouse: boolean; kafka: boolean };
}

let root: string;
let cwd: string;
let stateDir: string;
let up: UpJson | undefined;
/** Every pid a case saw, for afterAll to make sure of. */
const seenPids = new Set<number>();
const stateDirs: string[] = [];
const timings: Record<string, number> = {};

/** `winnow dev ...` from `cwd` (a temp dir, not the repository); resolves once the command has exited. */
function dev(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, 'dev', ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`winnow dev ${args.join(' ')} took over ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A fresh state dir under the temp root (left for afterAll to `dev down`). */
async function newStateDir(name: string): Promise<string> {
  const dir = path.join(root, name, '.winnow');
  await mkdir(path.dirname(dir), { recursive: true });
  stateDirs.push(dir);
  return dir;
}

/** The error a failed `dev up` printed: exactly one line of the documented shape, nothing on stdout. */
function oneLineError(run: Run): string {
  expect(run.code, `exit code; stderr: ${run.stderr}`).not.toBe(0);
  expect(run.code).not.toBeNull();
  const text = run.stderr.trim();
  expect(text.split('\n'), `stderr must be one line:\n${run.stderr}`).toHaveLength(1);
  expect(text).toMatch(ERROR_LINE);
  expect(run.stdout.trim()).toBe('');
  return text;
}

/** Nothing of a failed start is left: no process mentions its state dir, no dev.json. */
function nothingLeft(dir: string): void {
  expect(processesMentioning(dir)).toEqual([]);
  expect(existsSync(path.join(dir, 'dev.json'))).toBe(false);
}

async function kafkaAnswers(config: KafkaConfig): Promise<number> {
  const admin = new Kafka({
    ...config,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 2 },
  }).admin();
  await admin.connect();
  try {
    return (await admin.describeCluster()).brokers.length;
  } finally {
    await admin.disconnect();
  }
}

async function clickhouseVersion(url: string): Promise<string> {
  const res = await fetch(`${url}/?query=${encodeURIComponent('SELECT version()')}`, {
    signal: AbortSignal.timeout(5000),
  });
  expect(res.status).toBe(200);
  return (await res.text()).trim();
}

function running(): UpJson {
  if (!up) throw new Error('the servers of the first case are not up');
  return up;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'winnow-dev-cli-'));
  cwd = path.join(root, 'project');
  await mkdir(cwd);
  stateDir = path.join(cwd, '.winnow');
  stateDirs.push(stateDir);
});

afterAll(async () => {
  for (const dir of stateDirs) await dev(['down', '--state-dir', dir]).catch(() => undefined);
  const left = [...seenPids].filter(isAlive);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  if (root) await rm(root, { recursive: true, force: true });
  process.stdout.write(`winnow dev timings (ms): ${JSON.stringify(timings)}\n`);
  expect(left, 'processes afterAll had to kill').toEqual([]);
}, 60_000);

describe('winnow dev up | status | down', () => {
  it('up --json returns once ClickHouse and Kafka answer, and leaves them running without itself', async () => {
    const run = await dev(['up', '--json', ...FREE_PORTS, '--state-dir', stateDir]);
    timings['up (cold state dir)'] = run.ms;
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines, 'one JSON object on stdout').toHaveLength(1);
    up = JSON.parse(lines[0] ?? '') as UpJson;
    for (const pid of [up.supervisorPid, up.clickhouse.pid, up.kafka.pid]) seenPids.add(pid);

    expect(up.reused).toBe(false);
    expect(up.stateDir).toBe(stateDir);
    expect(existsSync(path.join(cwd, '.winnow', 'dev.json'))).toBe(true);
    expect(up.clickhouse.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(up.clickhouse.tcpPort).toBeGreaterThan(0);
    const ports = [
      new URL(up.clickhouse.url).port,
      up.clickhouse.tcpPort,
      ...[...up.kafka.brokers, ...up.kafka.saslBrokers].map((b) => b.split(':')[1]),
    ];
    expect(
      ports.map(Number).filter((p) => [8123, 9000, 9092, 9093].includes(p)),
      'default ports',
    ).toEqual([]);
    expect(up.kafka.brokers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(up.kafka.saslBrokers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(up.kafka.saslBrokers).not.toEqual(up.kafka.brokers);

    // The command has exited (dev() resolved on its close); the servers it started run on.
    for (const pid of [up.supervisorPid, up.clickhouse.pid, up.kafka.pid])
      expect(isAlive(pid), `pid ${pid}`).toBe(true);
    expect(descendants(up.supervisorPid)).toEqual(expect.arrayContaining([up.clickhouse.pid, up.kafka.pid]));

    const version = await clickhouseVersion(up.clickhouse.url);
    expect(Number(version.split('.')[0]), version).toBeGreaterThanOrEqual(26);
    expect(version).toBe(up.clickhouse.version);

    expect(await kafkaAnswers({ clientId: 'dev-cli-test', brokers: up.kafka.brokers })).toBe(1);
    expect(up.kafka.sasl).toMatchObject({ username: 'admin', password: 'admin-secret' });
    expect(
      await kafkaAnswers({
        clientId: 'dev-cli-test-sasl',
        brokers: up.kafka.saslBrokers,
        sasl: { mechanism: 'plain', username: 'admin', password: 'admin-secret' },
      }),
    ).toBe(1);
  });

  it('a second up reuses the running servers, fast', async () => {
    const first = running();
    const run = await dev(['up', '--json', ...FREE_PORTS, '--state-dir', stateDir]);
    timings['up (warm, reused)'] = run.ms;
    expect(run.code, run.stderr).toBe(0);
    const again = JSON.parse(run.stdout) as UpJson;
    expect(again.reused).toBe(true);
    expect([again.supervisorPid, again.clickhouse.pid, again.kafka.pid]).toEqual([
      first.supervisorPid,
      first.clickhouse.pid,
      first.kafka.pid,
    ]);
    expect(again.clickhouse.url).toBe(first.clickhouse.url);
    expect(again.kafka.brokers).toEqual(first.kafka.brokers);
    expect(run.ms).toBeLessThan(5000);
  });

  it('status --json reports both running, exit 0', async () => {
    const run = await dev(['status', '--json', '--state-dir', stateDir]);
    expect(run.code, run.stderr).toBe(0);
    const status = JSON.parse(run.stdout) as UpJson;
    expect(status.running).toEqual({ supervisor: true, clickhouse: true, kafka: true });
    expect(status.clickhouse.url).toBe(running().clickhouse.url);

    const text = await dev(['status', '--state-dir', stateDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/ClickHouse .* running/);
    expect(text.stdout).not.toMatch(/NOT running/);
  });

  it('a second instance on the same data dir fails with one line, and the first keeps running', async () => {
    const first = running();
    const other = await newStateDir('locked');
    const run = await dev([
      'up',
      '--json',
      ...FREE_PORTS,
      '--state-dir',
      other,
      '--data-dir',
      path.join(stateDir, 'data'),
    ]);
    timings['up (data dir locked)'] = run.ms;
    const line = oneLineError(run);
    expect(line).toMatch(/data dir(ectory)? .* is in use by/i);
    expect(line).toContain(path.join(stateDir, 'data'));
    expect(line).toMatch(/another --data-dir|another data dir/);
    nothingLeft(other);

    for (const pid of [first.supervisorPid, first.clickhouse.pid, first.kafka.pid])
      expect(isAlive(pid), `pid ${pid}`).toBe(true);
    expect(await clickhouseVersion(first.clickhouse.url)).toBe(first.clickhouse.version);
    expect(await kafkaAnswers({ clientId: 'dev-cli-test', brokers: first.kafka.brokers })).toBe(1);
    expect((await dev(['status', '--state-dir', stateDir])).code).toBe(0);
  });

  it('down stops everything: no supervisor, ClickHouse or Kafka process, nothing naming the state dir', async () => {
    const first = running();
    const tree = [first.supervisorPid, ...descendants(first.supervisorPid)];
    for (const pid of tree) seenPids.add(pid);
    // The supervisor, the ClickHouse child, the JVM and the JVM's watchdog at least.
    expect(tree.length).toBeGreaterThanOrEqual(4);

    const run = await dev(['down', '--state-dir', stateDir]);
    timings['down'] = run.ms;
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/stopped/);

    for (const pid of tree) expect(await waitGone(pid), `pid ${pid} still exists after dev down`).toBe(true);
    expect(processesMentioning(stateDir)).toEqual([]);
    expect(existsSync(path.join(stateDir, 'dev.json'))).toBe(false);

    const status = await dev(['status', '--state-dir', stateDir]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/not running/);
    const again = await dev(['down', '--state-dir', stateDir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing running/);
    up = undefined;
  });

  it('a port in use: one line naming the port and the fix, nothing left', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ port: 0, host: '127.0.0.1' }, resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const dir = await newStateDir('port-taken');
      const run = await dev(['up', ...FREE_PORTS, '--clickhouse-http-port', String(port), '--state-dir', dir]);
      timings['up (port in use)'] = run.ms;
      const line = oneLineError(run);
      expect(line).toContain(String(port));
      expect(line).toMatch(/in use/);
      expect(line).toMatch(/--clickhouse-http-port/);
      nothingLeft(dir);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('no Java on PATH: one line saying so and how to install it, nothing left', async () => {
    const bin = path.join(root, 'bin-without-java');
    await mkdir(bin);
    await symlink(process.execPath, path.join(bin, 'node'));
    const dir = await newStateDir('no-java');
    const run = await dev(['up', '--json', ...FREE_PORTS, '--state-dir', dir], { PATH: bin });
    timings['up (no Java)'] = run.ms;
    const line = oneLineError(run);
    expect(line).toMatch(/Java 17 or newer/);
    expect(line).toMatch(/install/);
    nothingLeft(dir);
  });

  it('readiness timeout: one line naming the timeout and the flag, nothing left', async () => {
    const dir = await newStateDir('timeout');
    const run = await dev(['up', '--json', ...FREE_PORTS, '--state-dir', dir, '--timeout', '0.001']);
    timings['up (timeout 0.001 s)'] = run.ms;
    const line = oneLineError(run);
    expect(line).toMatch(/did not (become ready|answer) .*within 1 ms/);
    expect(line).toMatch(/raise --timeout/);
    nothingLeft(dir);

    const bad = await dev(['up', '--state-dir', dir, '--timeout', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr.trim()).toMatch(ERROR_LINE);
    expect(bad.stderr).toMatch(/--timeout must be a positive number/);
    nothingLeft(dir);
  });
});
