/**
 * `npm run demo`: the reference scenario, live. Starts the embedded servers
 * (or reuses running ones), migrates examples/users.yaml, runs the daemon,
 * feeds it fake users with ~20% duplicates, and prints statistics every few
 * seconds. Ctrl-C stops everything it started.
 * Options: --rate N (events/s, default 500), --duration S (stop by itself), --port N (API, default 8080)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { startProducer } from './producer.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// The CLI from the sources (tsx), like the demo itself: never a stale dist/.
const bin = path.join(root, 'scripts', 'winnow-src.mjs');
const config = path.join(root, 'examples', 'users.yaml');

function say(line: string): void {
  process.stdout.write(`[demo] ${line}\n`);
}

function winnow(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      process.stdout.write(d);
    });
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

interface Stats {
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
    },
  });
  const rate = Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0) throw new Error(`--rate must be a positive number, got "${values.rate}"`);
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (duration !== undefined && !(duration > 0))
    throw new Error(`--duration must be a positive number of seconds, got "${values.duration}"`);

  say('starting the embedded ClickHouse and Kafka (the first run downloads Kafka, about 46 MB)');
  const before = await winnow(['dev', 'status', '--json']);
  const alreadyRunning = before.code === 0;
  if ((await winnow(['dev', 'up'])).code !== 0) return 1;

  const kafka = new Kafka({
    brokers: ['localhost:9093'],
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

  say('winnow migrate up --config examples/users.yaml');
  if ((await winnow(['migrate', 'up', '--config', config])).code !== 0) return 1;

  mkdirSync(path.join(process.cwd(), '.winnow', 'logs'), { recursive: true });
  const logFile = path.join(process.cwd(), '.winnow', 'logs', 'demo-run.log');
  const log = openSync(logFile, 'a');
  say(`winnow run --config examples/users.yaml --port ${values.port}  (logs: ${logFile})`);
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

  say(
    `producing ~${rate} events/s with ~20% duplicates of recent event_ids to users at localhost:9093 (SASL PLAIN admin)`,
  );
  const producer = await startProducer({
    brokers: ['localhost:9093'],
    topic: 'users',
    rate,
    sasl: { username: 'admin', password: 'admin-secret' },
  });
  const started = Date.now();
  const report = async (): Promise<void> => {
    const s = (await fetch(`${api}/api/v1/pipelines/users/stats`).then((r) => r.json())) as Stats;
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
  await new Promise((r) => setTimeout(r, 3000));
  await report().catch(() => undefined);
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('close', r));
  if (!alreadyRunning) await winnow(['dev', 'down']);
  else say('the servers were running before the demo; left running (npx winnow dev down stops them)');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[demo] error: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
