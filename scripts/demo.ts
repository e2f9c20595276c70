/**
 * `npm run demo`: the reference scenario, live. Starts the embedded servers
 * (or reuses running ones), migrates examples/users.yaml, runs the daemon,
 * feeds it fake users with ~20% duplicates, and prints statistics every few
 * seconds. Ctrl-C (or --duration) stops everything it started; the last line
 * is the verdict: what was sent against what winnow inserted and dropped
 * (exit code 1 when they do not reconcile or nothing arrived).
 * Options: --rate N (events/s, default 500), --duration S (stop by itself), --port N (API, default 8080),
 * --clickhouse-http-port, --clickhouse-tcp-port, --kafka-port, --kafka-sasl-port (the servers' ports,
 * default 8123, 9000, 9092, 9093; other ports run the demo on a copy of examples/users.yaml in .winnow/).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { demoVerdict, type Counters } from './demo-verdict.ts';
import { startProducer } from './producer.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// The CLI from the sources (tsx), like the demo itself: never a stale dist/.
const bin = path.join(root, 'scripts', 'winnow-src.mjs');
const exampleConfig = path.join(root, 'examples', 'users.yaml');

function say(line: string): void {
  process.stdout.write(`[demo] ${line}\n`);
}

function winnow(args: string[], quiet = false): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', quiet ? 'ignore' : 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!quiet) process.stdout.write(d);
    });
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

interface Stats extends Counters {
  messagesConsumed: number;
  inserted: number;
  duplicatesDropped: number;
  duplicateRatio: number;
  deadLetters: number;
  pendingRows: number;
  eventsPerSecond: { last1m: number };
  lastSlice: { durationMs: number; rowsIn: number } | null;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '500' },
      duration: { type: 'string' },
      port: { type: 'string', default: '8080' },
      'clickhouse-http-port': { type: 'string', default: '8123' },
      'clickhouse-tcp-port': { type: 'string', default: '9000' },
      'kafka-port': { type: 'string', default: '9092' },
      'kafka-sasl-port': { type: 'string', default: '9093' },
    },
  });
  const ports = ['port', 'clickhouse-http-port', 'clickhouse-tcp-port', 'kafka-port', 'kafka-sasl-port'] as const;
  for (const k of ports) {
    const n = Number(values[k]);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`--${k} must be a port number, got "${values[k]}"`);
  }
  const chHttp = values['clickhouse-http-port'];
  const sasl = `localhost:${values['kafka-sasl-port']}`;
  const config = demoConfig(chHttp, sasl, values.port);
  const rate = Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0) throw new Error(`--rate must be a positive number, got "${values.rate}"`);
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (duration !== undefined && !(duration > 0))
    throw new Error(`--duration must be a positive number of seconds, got "${values.duration}"`);

  const status = await winnow(['dev', 'status', '--json'], true);
  const alreadyRunning = status.code === 0;
  say(
    alreadyRunning
      ? 'the embedded ClickHouse and Kafka of this directory run already; reusing them'
      : 'starting the embedded ClickHouse and Kafka (the first run downloads Kafka, about 46 MB)',
  );
  const up = await winnow([
    'dev',
    'up',
    ...['clickhouse-http-port', 'clickhouse-tcp-port', 'kafka-port', 'kafka-sasl-port'].flatMap((k) => [
      `--${k}`,
      values[k as (typeof ports)[number]],
    ]),
  ]);
  if (up.code !== 0) return 1;

  const kafka = new Kafka({
    brokers: [sasl],
    logLevel: logLevel.NOTHING,
    sasl: { mechanism: 'plain', username: 'admin', password: 'admin-secret' },
  });
  const admin = kafka.admin();
  await admin.connect();
  if (!(await admin.listTopics()).includes('users')) {
    await admin.createTopics({
      topics: [{ topic: 'users', numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    say('created topic users');
  }
  await admin.disconnect();

  const shown = path.relative(process.cwd(), config);
  say(`winnow migrate up --config ${shown}`);
  if ((await winnow(['migrate', 'up', '--config', config])).code !== 0) return 1;

  mkdirSync(path.join(process.cwd(), '.winnow', 'logs'), { recursive: true });
  const logFile = path.join(process.cwd(), '.winnow', 'logs', 'demo-run.log');
  const log = openSync(logFile, 'a');
  say(`winnow run --config ${shown} --port ${values.port}  (logs: ${logFile})`);
  const daemon: ChildProcess = spawn(process.execPath, [bin, 'run', '--config', config, '--port', values.port], {
    stdio: ['ignore', log, log],
  });
  const api = `http://127.0.0.1:${values.port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${api}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (daemon.exitCode !== null || i > 100) {
      say(`the daemon did not start; see ${logFile}`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  const stats = async (): Promise<Stats> => {
    const res = await fetch(`${api}/api/v1/pipelines/users/stats`);
    if (!res.ok) throw new Error(`GET ${api}/api/v1/pipelines/users/stats: HTTP ${res.status}`);
    return (await res.json()) as Stats;
  };
  // This run's numbers are the counters' growth: the servers may keep an earlier run's rows.
  const before = await stats();
  say(`producing ~${rate} events/s with ~20% duplicates of recent event_ids to users at ${sasl} (SASL PLAIN admin)`);
  const producer = await startProducer({
    brokers: [sasl],
    topic: 'users',
    rate,
    sasl: { username: 'admin', password: 'admin-secret' },
  });
  const started = Date.now();
  const report = async (): Promise<void> => {
    const s = await stats();
    const secs = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
    say(
      `${secs}s  sent ${producer.counts.events} + ${producer.counts.duplicates} dup | consumed ${s.messagesConsumed} | inserted ${s.inserted} | dropped ${s.duplicatesDropped} (${(s.duplicateRatio * 100).toFixed(1)}%) | dead letters ${s.deadLetters} | waiting ${s.pendingRows} | ${s.eventsPerSecond.last1m.toFixed(0)} ev/s (1m)` +
        (s.lastSlice ? ` | last slice ${s.lastSlice.rowsIn} rows in ${Math.round(s.lastSlice.durationMs)} ms` : ''),
    );
  };
  const timer = setInterval(() => {
    report().catch((err: unknown) => say(`stats unavailable: ${(err as Error).message}`));
  }, 3000);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    if (duration !== undefined) setTimeout(resolve, duration * 1000);
  });
  say('stopping: producer, daemon' + (alreadyRunning ? '' : ', servers'));
  clearInterval(timer);
  await producer.stop();
  // The last events reach a slice within a few seconds: wait until all are in (at most 60 s).
  const sent = producer.counts.events + producer.counts.duplicates;
  const deadline = Date.now() + 60_000;
  let after = await stats().catch(() => before);
  while (Date.now() < deadline && (after.messagesConsumed - before.messagesConsumed < sent || after.pendingRows > 0)) {
    await new Promise((r) => setTimeout(r, 1000));
    after = await stats().catch(() => after);
  }
  await report().catch(() => undefined);
  const verdict = demoVerdict(producer.counts, before, after);
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('close', r));
  if (!alreadyRunning) await winnow(['dev', 'down']);
  else say('the servers were running before the demo; left running (npx winnow dev down stops them)');
  say(verdict.line);
  return verdict.ok ? 0 : 1;
}

/** examples/users.yaml, or a copy of it for other ports (in .winnow/, beside the demo's logs). */
function demoConfig(chHttp: string, sasl: string, apiPort: string): string {
  if (chHttp === '8123' && sasl === 'localhost:9093' && apiPort === '8080') return exampleConfig;
  const text = readFileSync(exampleConfig, 'utf8')
    .replace('brokers: [localhost:9093]', `brokers: [${sasl}]`)
    .replace('url: http://localhost:8123', `url: http://localhost:${chHttp}`)
    .replace(/^  port: 8080\b/m, `  port: ${apiPort}`);
  const dir = path.join(process.cwd(), '.winnow');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'demo-users.yaml');
  writeFileSync(file, text);
  return file;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[demo] error: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
