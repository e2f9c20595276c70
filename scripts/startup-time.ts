/**
 * How long `winnow` takes to answer, from spawn to exit, as a user runs it: the compiled CLI (bin/winnow.mjs,
 * dist/, rebuilt first so the figures are of the current sources). Each command runs --runs times, one after
 * the other; the script prints the median and the maximum next to the targets (README, "Startup time"):
 * `winnow --help` under 300 ms, `winnow stats` under 1 s against a local server.
 *
 * For `stats` it sets up a pipeline of its own on the servers given (a new database and topic with a random
 * suffix, migrated once, 1000 events produced so that staging holds rows) unless --config names a migrated one.
 *
 *   npm run startup-time -- [--runs 10] [--clickhouse URL] [--brokers host:port] [--config FILE] [--source]
 *
 * --clickhouse and --brokers default to $WINNOW_TEST_CLICKHOUSE_URL and $WINNOW_TEST_KAFKA_BROKERS, then
 * http://127.0.0.1:8123 and 127.0.0.1:9092 (`winnow dev up`). --source also times the TypeScript sources run
 * through tsx (scripts/winnow-src.mjs), what bin/winnow.mjs did before the build existed. Exit code 1 only when
 * a command fails, not when a target is missed (a busy machine is slower).
 */
import { createClient } from '@clickhouse/client';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';

const root = fileURLToPath(new URL('..', import.meta.url));
const COMPILED = path.join(root, 'bin', 'winnow.mjs');
const SOURCE = path.join(root, 'scripts', 'winnow-src.mjs');

const USAGE = `usage: npm run startup-time -- [--runs 10] [--clickhouse URL] [--brokers host:port] [--config FILE] [--source]

Times the compiled winnow (rebuilt first) from spawn to exit: --help, stats --help, config check --offline and
stats, each --runs times; prints median and max next to the targets (--help < 300 ms, stats < 1 s).
  --runs N           runs per command (10)
  --clickhouse URL   ClickHouse for stats ($WINNOW_TEST_CLICKHOUSE_URL, else http://127.0.0.1:8123)
  --brokers LIST     Kafka brokers for stats' own pipeline ($WINNOW_TEST_KAFKA_BROKERS, else 127.0.0.1:9092)
  --config FILE      time stats on this migrated pipeline instead of one of its own
  --source           also time the TypeScript sources run through tsx
`;

function parseOptions() {
  try {
    return parseArgs({
      options: {
        runs: { type: 'string', default: '10' },
        clickhouse: { type: 'string' },
        brokers: { type: 'string' },
        config: { type: 'string' },
        source: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`startup-time: ${(err as Error).message} (--help lists the options)\n`);
    process.exit(2);
  }
}
const { values } = parseOptions();
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) {
  process.stderr.write(`startup-time: --runs must be a whole number >= 1, got "${values.runs}"\n`);
  process.exit(2);
}
const clickhouseUrl = values.clickhouse ?? process.env['WINNOW_TEST_CLICKHOUSE_URL'] ?? 'http://127.0.0.1:8123';
const brokers = (values.brokers ?? process.env['WINNOW_TEST_KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(',');

/** One run: wall-clock ms from spawn to exit. Throws with the command's stderr when it fails. */
function timeOnce(bin: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code === 0) resolve(ms);
      else reject(new Error(`winnow ${args.join(' ')} exited with ${code}: ${stderr.trim()}`));
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A pipeline of our own on the given servers, migrated, with 1000 staged events; returns its config file. */
async function setUpPipeline(): Promise<string> {
  const suffix = randomBytes(4).toString('hex');
  const database = `winnow_startup_${suffix}`;
  const topic = `startup_${suffix}`;
  const ch = createClient({ url: clickhouseUrl });
  await ch.command({ query: `CREATE DATABASE ${database}` });
  await ch.close();
  const kafka = new Kafka({ clientId: 'winnow-startup-time', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-startup-')), 'winnow.yaml');
  await writeFile(
    file,
    `pipelines:
  - name: startup
    source: { brokers: [${brokers.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${clickhouseUrl}, database: ${database}, table: events }
`,
  );
  const migrate = spawnSync(process.execPath, [COMPILED, 'migrate', 'up', '--config', file], { encoding: 'utf8' });
  if (migrate.status !== 0) throw new Error(`winnow migrate up failed: ${migrate.stderr.trim()}`);
  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: 1000 }, (_, i) => ({
    value: JSON.stringify({
      event_id: `00000000-0000-4000-8000-${(i % 800).toString(16).padStart(12, '0')}`,
      user_name: `u${i}`,
    }),
  }));
  await producer.send({ topic, messages });
  await producer.disconnect();
  process.stdout.write(`pipeline: database ${database}, topic ${topic}, config ${file}\n`);
  return file;
}

async function main(): Promise<void> {
  const build = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  const config = values.config ?? (await setUpPipeline());

  const cases: Array<{ args: string[]; targetMs?: number }> = [
    { args: ['--help'], targetMs: 300 },
    { args: ['stats', '--help'] },
    { args: ['config', 'check', '--offline', '--config', config] },
    { args: ['stats', '--config', config], targetMs: 1000 },
  ];
  const bins: Array<[string, string]> = [['compiled', COMPILED]];
  if (values.source) bins.push(['source (tsx)', SOURCE]);

  process.stdout.write(
    `node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(2)}; ${runs} runs each\n`,
  );
  process.stdout.write(
    `${'command'.padEnd(48)} ${'build'.padEnd(13)} ${'median'.padStart(8)} ${'max'.padStart(8)}  target\n`,
  );
  for (const c of cases) {
    for (const [label, bin] of bins) {
      await timeOnce(bin, c.args); // warm the file system cache (and tsx's), not counted
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push(await timeOnce(bin, c.args));
      const med = median(times);
      const target =
        c.targetMs === undefined ? '' : `< ${c.targetMs} ms: ${med < c.targetMs ? 'met' : 'MISSED'} (median)`;
      const shown = c.args.map((a) => (a === config ? 'FILE' : a)).join(' ');
      process.stdout.write(
        `${`winnow ${shown}`.padEnd(48)} ${label.padEnd(13)} ${`${med.toFixed(0)} ms`.padStart(8)} ${`${Math.max(...times).toFixed(0)} ms`.padStart(8)}  ${target}\n`,
      );
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`startup-time: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
