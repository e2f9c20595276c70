/**
 * The fault suite's harness. Every fault test file starts its own embedded
 * ClickHouse and Kafka (fixed free ports picked once, so a server can be
 * killed and started again on the same data directory and address), drives
 * the real `winnow` command as a user would, feeds a seeded stream with a
 * known duplicate structure (test/e2e/oracle.ts) and ends with the oracle's
 * exact check of the final table and of the counts.
 *
 * Invariants every scenario checks at its end: I1 uniqueness, I2
 * completeness, I3 first wins (the final table equals the oracle's rows as a
 * multiset: 0 lost, 0 doubled), I4 nothing lost (staging holds every valid
 * message, the dead letters every malformed one, the seen keys exactly the
 * final rows' keys, and the stats reconcile), I6 crash safety (the fault
 * changed nothing).
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { expect } from 'vitest';
import { startEmbeddedClickHouse, type RunningClickHouse } from '../../dev/clickhouse.ts';
import { startEmbeddedKafka, type RunningKafka } from '../../dev/kafka.ts';
import { freePort } from '../../dev/ports.ts';
import { byTopicPartition } from '../../src/kafka/partitions.ts';
import { BIN, runCli } from '../e2e/cli.ts';
import { eventIdOf, expectedRows, generate, rng, sortRows, type FinalRow, type GenMessage } from '../e2e/oracle.ts';

export const WINDOW_MS = 10 * 60_000;
const RESERVED_PORTS = new Set([8123, 9000, 9092, 9093]);

export function hex(n = 4): string {
  return randomBytes(n).toString('hex');
}

/** A free port that is none of the reference scenario's ports and none already taken by this suite. */
async function pickPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (!RESERVED_PORTS.has(p) && !taken.has(p)) {
      taken.add(p);
      return p;
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---- servers ----------------------------------------------------------------

export interface Ports {
  chHttp: number;
  chTcp: number;
  kafka: number;
  kafkaSasl: number;
  kafkaController: number;
}

/** One embedded ClickHouse and one Kafka broker of this test file, restartable on the same ports and data. */
export class Servers {
  private constructor(
    readonly dir: string,
    readonly ports: Ports,
    public clickhouse: RunningClickHouse,
    public kafka: RunningKafka,
  ) {}

  static async start(label: string): Promise<Servers> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `winnow-faults-${label}-`));
    const taken = new Set<number>();
    const ports: Ports = {
      chHttp: await pickPort(taken),
      chTcp: await pickPort(taken),
      kafka: await pickPort(taken),
      kafkaSasl: await pickPort(taken),
      kafkaController: await pickPort(taken),
    };
    const [ch, kafka] = await Promise.all([Servers.startClickHouse(dir, ports), Servers.startKafka(dir, ports)]);
    process.stderr.write(`fault servers (${label}): ClickHouse ${ch.version} ${ch.url}, Kafka ${kafka.version} ${kafka.brokers.join(',')}; data and logs in ${dir}\n`);
    return new Servers(dir, ports, ch, kafka);
  }

  private static startClickHouse(dir: string, ports: Ports): Promise<RunningClickHouse> {
    return startEmbeddedClickHouse({
      dataDir: path.join(dir, 'clickhouse'),
      logFile: path.join(dir, 'clickhouse.log'),
      httpPort: ports.chHttp,
      tcpPort: ports.chTcp,
    });
  }

  private static startKafka(dir: string, ports: Ports): Promise<RunningKafka> {
    return startEmbeddedKafka({
      dataDir: path.join(dir, 'kafka'),
      logFile: path.join(dir, 'kafka.log'),
      port: ports.kafka,
      saslPort: ports.kafkaSasl,
      controllerPort: ports.kafkaController,
    });
  }

  get clickhouseUrl(): string {
    return this.clickhouse.url;
  }

  get brokers(): string[] {
    return this.kafka.brokers;
  }

  /** SIGKILL the ClickHouse server process (no clean shutdown) and wait until it is gone. */
  async killClickHouse(): Promise<void> {
    const pid = this.clickhouse.pid;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (isAlive(pid)) {
      if (Date.now() > deadline) throw new Error(`ClickHouse pid ${pid} still alive 15 s after SIGKILL`);
      await sleep(50);
    }
  }

  /** Start ClickHouse again on the same data directory and ports. */
  async startClickHouseAgain(): Promise<void> {
    this.clickhouse = await Servers.startClickHouse(this.dir, this.ports);
  }

  /** Stop the broker (SIGTERM, clean) and start it again on the same data directory and ports. */
  async restartKafka(downMs = 0): Promise<void> {
    await this.kafka.stop();
    if (downMs > 0) await sleep(downMs);
    this.kafka = await Servers.startKafka(this.dir, this.ports);
  }

  /** Kills the daemons still running (a failed scenario's), then stops both servers. */
  async stop(): Promise<void> {
    const left = [...started];
    for (const d of left) d.kill('SIGKILL');
    await Promise.all(left.map((d) => d.exited));
    await Promise.allSettled([this.clickhouse.stop(), this.kafka.stop()]);
  }

  kafkaClient(label = 'faults'): Kafka {
    return new Kafka({
      clientId: `winnow-${label}-${hex()}`,
      brokers: this.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 3_000 },
    });
  }

  clickhouseClient(): ClickHouseClient {
    // Quiet: failed requests are expected while a server is down on purpose; errors still reach the caller.
    return createClient({ url: this.clickhouseUrl, request_timeout: 60_000, log: { level: ClickHouseLogLevel.OFF } });
  }
}

// ---- the daemon -----------------------------------------------------------------

export interface LogLine {
  msg: string;
  level: string;
  [k: string]: unknown;
}

/** Every daemon this test file started: a failed scenario must not leave one running. */
const started = new Set<DaemonProc>();

/** `winnow run` as a child process, with its JSON log lines and its exit. */
export class DaemonProc {
  logs = '';
  api: string | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        started.delete(this);
        resolve({ code, signal });
      }),
    );
    started.add(this);
    child.stdout?.on('data', (d: Buffer) => (this.logs += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.logs += d.toString()));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Starts `winnow run --port 0`; resolves once its API listens. */
  static async start(configFile: string, env: Record<string, string> = {}): Promise<DaemonProc> {
    const base = { ...process.env };
    delete base['WINNOW_FAULT'];
    const child = spawn(process.execPath, [BIN, 'run', '--config', configFile, '--port', '0'], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = new DaemonProc(child);
    const deadline = Date.now() + 60_000;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void d.exited.then((e) => (exit = e));
    while (!d.api) {
      const m = /"api":"(http:\/\/[^"]+)"/.exec(d.logs);
      if (m?.[1]) d.api = m[1];
      else if (exit) throw new Error(`winnow run exited (${JSON.stringify(exit)}) before serving its API:\n${d.logs}`);
      else if (Date.now() > deadline) throw new Error(`winnow run did not serve its API within 60 s:\n${d.logs}`);
      else await sleep(50);
    }
    return d;
  }

  lines(): LogLine[] {
    return this.logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return undefined;
        }
      })
      .filter((l): l is LogLine => l !== undefined);
  }

  count(msg: string): number {
    return this.lines().filter((l) => l.msg.startsWith(msg)).length;
  }

  slices(): LogLine[] {
    return this.lines().filter((l) => l.msg === 'slice');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, and the exit code (0 when the daemon stopped cleanly). */
  async stop(): Promise<number | null> {
    this.kill('SIGTERM');
    const e = await this.exited;
    return e.code;
  }
}

// ---- the pipeline -----------------------------------------------------------------

export interface Stats {
  messagesConsumed: number;
  staged: number;
  inserted: number;
  duplicatesDropped: number;
  deadLetters: number;
  /** staged messages the final table refused (dead letters too) */
  refusedByFinal: number;
  pendingRows: number;
  lastError: string | null;
}

export interface PipelineOptions {
  label: string;
  maxSliceRows: number;
  /** the URL the daemon uses for ClickHouse (a proxy); migrate and stats use the server directly */
  daemonSinkUrl?: string;
}

/** One pipeline of a scenario: its topics, database, config files and the checks on them. */
export class Pipeline {
  readonly name: string;
  readonly database: string;
  readonly topics: [string, string];
  configFile = '';
  daemonConfigFile = '';
  readonly ch: ClickHouseClient;

  constructor(
    readonly servers: Servers,
    readonly opts: PipelineOptions,
  ) {
    const h = hex();
    this.name = `f_${opts.label.replace(/[^a-z0-9]/g, '_')}_${h}`.slice(0, 40);
    this.database = `winnow_faults_${h}`;
    this.topics = [`faults_${h}_a`, `faults_${h}_b`];
    this.ch = servers.clickhouseClient();
  }

  get consumerGroup(): string {
    return `winnow_${this.name}`;
  }

  /** The stream's two topics (3 partitions and 1), the config file(s) and `winnow migrate up`. */
  async create(): Promise<void> {
    const admin = this.servers.kafkaClient('admin').admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [
          { topic: this.topics[0], numPartitions: 3, replicationFactor: 1 },
          { topic: this.topics[1], numPartitions: 1, replicationFactor: 1 },
        ],
        // kafkajs's own wait gives up on "does not host this topic-partition" while several topics are created at once
        waitForLeaders: false,
      });
      await waitFor(
        async () => {
          const { topics } = await admin.fetchTopicMetadata({ topics: this.topics });
          return topics.map((t) => t.partitions.filter((q) => q.leader >= 0).length);
        },
        (n) => n[0] === 3 && n[1] === 1,
        30_000,
        `leaders of ${this.topics.join(', ')}`,
      );
    } finally {
      await admin.disconnect();
    }
    const dir = await mkdtemp(path.join(this.servers.dir, `${this.opts.label}-`));
    this.configFile = path.join(dir, 'winnow.yaml');
    await writeFile(this.configFile, this.yaml(this.servers.clickhouseUrl));
    this.daemonConfigFile = this.configFile;
    if (this.opts.daemonSinkUrl) {
      this.daemonConfigFile = path.join(dir, 'winnow-daemon.yaml');
      await writeFile(this.daemonConfigFile, this.yaml(this.opts.daemonSinkUrl));
    }
    const m = await runCli(['migrate', 'up', '--config', this.configFile]);
    expect(m.code, m.stderr).toBe(0);
  }

  private yaml(sinkUrl: string): string {
    return `pipelines:
  - name: ${this.name}
    source:
      brokers: [${this.servers.brokers.join(', ')}]
      topics: [${this.topics.join(', ')}]
    columns:
      - { name: event_id, type: UUID }
      - { name: user_id, type: UUID }
      - { name: name, type: String, path: user_name }
      - { name: email, type: String, path: user_email }
      - { name: created_at, type: DateTime, path: created_at }
    dedup:
      key: [event_id]
      window: ${WINDOW_MS / 60_000}m
    sink:
      url: ${sinkUrl}
      database: ${this.database}
      table: users_dedup
    schedule:
      interval: 1s
      maxSliceRows: ${this.opts.maxSliceRows}
`;
  }

  /** The seeded stream: phase 1 then phase 2 (produced after phase 1 is processed, as the oracle assumes). */
  generate(seed: number, originals: number, baseTime = Date.now() - 5 * 60_000): GenMessage[][] {
    return generate(seed, originals, {
      topics: [
        { name: this.topics[0], partitions: 3 },
        { name: this.topics[1], partitions: 1 },
      ],
      windowMs: WINDOW_MS,
      baseTime,
    });
  }

  startDaemon(env: Record<string, string> = {}): Promise<DaemonProc> {
    return DaemonProc.start(this.daemonConfigFile, env);
  }

  async query<T>(sql: string): Promise<T[]> {
    const rs = await this.ch.query({ query: sql, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  async command(sql: string): Promise<void> {
    await this.ch.command({ query: sql });
  }

  table(t: string): string {
    return `${this.database}.${t}`;
  }

  async statsFromCli(): Promise<Stats> {
    const r = await runCli(['stats', '--config', this.configFile, '--json'], {}, 60_000);
    if (r.code !== 0) throw new Error(`winnow stats failed (${r.code}): ${r.stderr}`);
    const s = (JSON.parse(r.stdout) as { pipelines: Stats[] }).pipelines[0];
    if (!s) throw new Error(`winnow stats printed no pipeline: ${r.stdout}`);
    return s;
  }

  /** Cheap progress numbers for polling (distinct coordinates in staging and dead letters, committed slice sums). */
  async progress(): Promise<Stats> {
    const [st] = await this.query<{ staged: string; errors: string; inserted: string; dups: string; rows_in: string; rejected: string }>(
      `SELECT
         (SELECT uniqExact(_topic, _partition, _offset) FROM ${this.table(`winnow_${this.name}_staging`)}) AS staged,
         (SELECT uniqExact(_topic, _partition, _offset) FROM ${this.table(`winnow_${this.name}_errors`)}) AS errors,
         (SELECT sum(inserted) FROM ${this.table('winnow_slices')} WHERE pipeline = '${this.name}' AND status = 'committed') AS inserted,
         (SELECT sum(duplicates) FROM ${this.table('winnow_slices')} WHERE pipeline = '${this.name}' AND status = 'committed') AS dups,
         (SELECT sum(rows_in) FROM ${this.table('winnow_slices')} WHERE pipeline = '${this.name}' AND status = 'committed') AS rows_in,
         (SELECT sum(rejected) FROM ${this.table('winnow_slices')} WHERE pipeline = '${this.name}' AND status = 'committed') AS rejected`,
    );
    const staged = Number(st?.staged ?? 0);
    const deadLetters = Number(st?.errors ?? 0);
    const refusedByFinal = Number(st?.rejected ?? 0);
    return {
      messagesConsumed: staged + deadLetters - refusedByFinal,
      staged,
      deadLetters,
      refusedByFinal,
      inserted: Number(st?.inserted ?? 0),
      duplicatesDropped: Number(st?.dups ?? 0),
      pendingRows: Math.max(0, staged - Number(st?.rows_in ?? 0)),
      lastError: null,
    };
  }

  /** Waits until ClickHouse consumed `msgs` (staging plus dead letters). */
  async waitConsumed(msgs: GenMessage[], timeoutMs = 120_000): Promise<void> {
    const total = msgs.length;
    await waitFor(() => this.progress(), (s) => s.messagesConsumed >= total, timeoutMs, `${this.name}: ClickHouse to consume ${total} messages`);
  }

  /** Waits until every message of `msgs` is consumed and every staged row processed. */
  async waitQuiescent(msgs: GenMessage[], timeoutMs = 180_000): Promise<Stats> {
    const total = msgs.length;
    const malformed = msgs.filter((m) => m.kind === 'malformed').length;
    const valid = total - malformed;
    return waitFor(
      () => this.progress(),
      (s) =>
        s.staged === valid &&
        s.deadLetters - s.refusedByFinal === malformed &&
        s.pendingRows === 0 &&
        s.inserted + s.duplicatesDropped + s.refusedByFinal === valid,
      timeoutMs,
      `${this.name}: the pipeline to process ${total} messages (${valid} valid, ${malformed} malformed)`,
    );
  }

  /** Messages Kafka holds in the stream's topics (log end minus log start, summed). */
  async kafkaMessageCount(): Promise<number> {
    const admin = this.servers.kafkaClient('admin').admin();
    await admin.connect();
    try {
      let n = 0;
      for (const t of this.topics) for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high) - Number(p.low);
      return n;
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * The exact check. `phases` are the messages as Kafka holds them, in the
   * order they were processed. `refusedKeys`: event_ids the final table
   * refuses; every message of theirs must be a dead letter, and the rest is
   * exact as if they had never been sent. Returns the report line.
   */
  async verify(scenario: string, phases: GenMessage[][], note = '', refusedKeys: ReadonlySet<string> = new Set()): Promise<string> {
    const all = phases.flat();
    const malformed = all.filter((m) => m.kind === 'malformed').length;
    const valid = all.length - malformed;
    const isRefused = (m: GenMessage): boolean => refusedKeys.has(eventIdOf(m) ?? '');
    const refused = all.filter(isRefused).length;
    const expected = expectedRows(phases.map((ph) => ph.filter((m) => !isRefused(m))), WINDOW_MS);
    const actual = await this.query<FinalRow>(
      `SELECT toString(event_id) AS event_id, toString(user_id) AS user_id, name, email, toString(created_at) AS created_at FROM ${this.table('users_dedup')}`,
    );
    const { lost, doubled } = diff(expected, actual);
    const [coords] = await this.query<{ staged: string; staged_rows: string; errors: string; seen: string; seen_vs_final: string }>(
      `SELECT
         (SELECT uniqExact(_topic, _partition, _offset) FROM ${this.table(`winnow_${this.name}_staging`)}) AS staged,
         (SELECT count() FROM ${this.table(`winnow_${this.name}_staging`)}) AS staged_rows,
         (SELECT uniqExact(_topic, _partition, _offset) FROM ${this.table(`winnow_${this.name}_errors`)}) AS errors,
         (SELECT count() FROM ${this.table(`winnow_${this.name}_seen`)}) AS seen,
         (SELECT count() FROM (
            SELECT event_id FROM (
              SELECT event_id, toInt64(count()) AS n FROM ${this.table(`winnow_${this.name}_seen`)} GROUP BY event_id
              UNION ALL
              SELECT event_id, -toInt64(count()) AS n FROM ${this.table('users_dedup')} GROUP BY event_id)
            GROUP BY event_id HAVING sum(n) != 0)) AS seen_vs_final`,
    );
    const s = await this.statsFromCli();
    const redelivered = Number(coords?.staged_rows) - Number(coords?.staged);
    const line =
      `fault ${scenario}: ${all.length} events (${valid} valid, ${malformed} malformed), ${expected.length} kept, ` +
      `${valid - expected.length - refused} dropped, ${malformed + refused} dead letters (${refused} refused by the final table), ${lost} lost, ${doubled} doubled; ` +
      `stats inserted ${s.inserted} + duplicates ${s.duplicatesDropped} = ${s.inserted + s.duplicatesDropped} of ${valid} valid, ` +
      `dead letters ${s.deadLetters}` +
      (redelivered > 0 ? `; ${redelivered} re-delivered rows in staging` : '') +
      (note ? `; ${note}` : '');
    // The line first, so a failing scenario reports its numbers too.
    process.stderr.write(`${line}\n`);

    // Kafka holds exactly the stream (no unacknowledged, no doubled send).
    expect(await this.kafkaMessageCount(), 'messages in Kafka').toBe(all.length);
    // I1-I3: exactly the oracle's rows, 0 lost, 0 doubled.
    expect({ lost, doubled }, `${scenario}: final table vs oracle`).toEqual({ lost: 0, doubled: 0 });
    expect(sortRows(actual)).toEqual(sortRows(expected));
    // I4: every valid message staged, every malformed one dead-lettered, the seen keys are the final rows' keys.
    expect(Number(coords?.staged), 'distinct staged coordinates').toBe(valid);
    expect(Number(coords?.errors), 'distinct dead-letter coordinates').toBe(malformed + refused);
    expect(Number(coords?.seen), 'seen keys').toBe(expected.length);
    expect(Number(coords?.seen_vs_final), 'keys whose seen count differs from their final count').toBe(0);
    // The counts as `winnow stats --json` reports them reconcile with the oracle.
    expect(s, `${scenario}: winnow stats`).toMatchObject({
      messagesConsumed: all.length,
      staged: valid,
      inserted: expected.length,
      duplicatesDropped: valid - expected.length - refused,
      deadLetters: malformed + refused,
      refusedByFinal: refused,
      pendingRows: 0,
    });
    return line;
  }

  async close(): Promise<void> {
    await this.ch.close();
  }
}

/** Multiset difference of final rows: rows the oracle wants and the table lacks, rows the table has too often or at all wrongly. */
export function diff(expected: FinalRow[], actual: FinalRow[]): { lost: number; doubled: number } {
  const k = (r: FinalRow): string => `${r.event_id}|${r.user_id}|${r.name}|${r.email}|${r.created_at}`;
  const want = new Map<string, number>();
  for (const r of expected) want.set(k(r), (want.get(k(r)) ?? 0) + 1);
  let doubled = 0;
  for (const r of actual) {
    const n = want.get(k(r)) ?? 0;
    if (n > 0) want.set(k(r), n - 1);
    else doubled++;
  }
  const lost = [...want.values()].reduce((a, b) => a + b, 0);
  return { lost, doubled };
}

/** Polls `probe` (errors count as "not yet": servers may be down on purpose) until `done`. */
export async function waitFor<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number, what: string, pollMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? `last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${why}`);
    }
    await sleep(pollMs);
  }
}

// ---- producing --------------------------------------------------------------------

export interface ProduceOptions {
  /** messages per send; default 200 */
  batch?: number;
  /** pause after each send, ms (a paced stream); default 0 */
  pauseMs?: number;
  /** called after each acknowledged send with the number of messages sent so far */
  onProgress?: (sent: number) => void;
  /** offered rate, messages/s: each send waits until its batch is due (from the start); default unpaced */
  ratePerSec?: number;
  /** asked before each send: true ends the stream there (the result's `sent` says how much of `msgs` went) */
  stop?: () => boolean;
}

/**
 * Sends `msgs` in order (per partition in timestamp order), with an
 * idempotent producer so the client's own retries never write a message
 * twice. A send that still fails (the broker is away for long) is sent again
 * until acknowledged; `resent` counts those, and the oracle then reads the
 * log back (see `readLog`), since a failed send may have been written.
 */
export async function produce(
  kafka: Kafka,
  msgs: GenMessage[],
  opts: ProduceOptions = {},
): Promise<{ resent: number; slowestMs: number; sent: number }> {
  const batch = opts.batch ?? 200;
  let producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let resent = 0;
  let slowestMs = 0;
  let sent = 0;
  const begun = Date.now();
  try {
    for (let i = 0; i < msgs.length; i += batch) {
      if (opts.ratePerSec) {
        const due = begun + (i / opts.ratePerSec) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      if (opts.stop?.()) break;
      const part = msgs.slice(i, i + batch);
      const byTopic = new Map<string, GenMessage[]>();
      for (const m of part) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m]);
      const record = {
        topicMessages: [...byTopic.entries()].map(([topic, ms]) => ({
          topic,
          messages: ms.map((m) => ({ partition: m.partition, timestamp: String(m.timestamp), value: m.value })),
        })),
      };
      const started = Date.now();
      const deadline = started + 120_000;
      for (;;) {
        try {
          await producer.sendBatch(record);
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          resent++;
          await producer.disconnect().catch(() => undefined);
          await sleep(500);
          producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
          await producer.connect().catch(() => undefined);
        }
      }
      slowestMs = Math.max(slowestMs, Date.now() - started);
      sent = Math.min(msgs.length, i + batch);
      opts.onProgress?.(sent);
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return { resent, slowestMs, sent };
}

/**
 * What Kafka holds in `topics`, mapped back to the generated messages (kind
 * and phase from the generator): the oracle's input when sends may have been
 * repeated. Sorted by topic, partition, offset.
 */
export async function readLog(kafka: Kafka, topics: string[], generated: GenMessage[][]): Promise<GenMessage[][]> {
  const byContent = new Map<string, GenMessage>();
  for (const m of generated.flat()) byContent.set(`${m.topic}/${m.partition}/${m.timestamp}/${m.value.toString('base64')}`, m);
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  try {
    for (const t of topics) for (const p of await admin.fetchTopicOffsets(t)) ends.set(`${t}/${p.partition}`, Number(p.high));
  } finally {
    await admin.disconnect();
  }
  const want = [...ends.values()].reduce((a, b) => a + b, 0);
  const got: { m: GenMessage; offset: number }[] = [];
  const strangers: string[] = [];
  const consumer = kafka.consumer({ groupId: `winnow-faults-readback-${hex()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ topic, partition, message }) => {
        const k = `${topic}/${partition}/${message.timestamp}/${(message.value ?? Buffer.alloc(0)).toString('base64')}`;
        const m = byContent.get(k);
        if (m) got.push({ m, offset: Number(message.offset) });
        else strangers.push(k);
        if (got.length + strangers.length >= want) done();
        return Promise.resolve();
      },
    });
    if (want > 0) await Promise.race([all, sleep(60_000).then(() => Promise.reject(new Error(`read ${got.length} of ${want} messages back`)))]);
  } finally {
    await consumer.disconnect();
  }
  expect(strangers, 'messages in Kafka that the generator never made').toEqual([]);
  got.sort((a, b) => byTopicPartition(a.m, b.m) || a.offset - b.offset);
  return generated.map((_p, i) => got.filter((g) => g.m.phase === i + 1).map((g) => g.m));
}

/**
 * A third phase for scenarios that go on after a fault: new originals with
 * retries, re-sends and the malformed messages again, later than everything
 * before in every partition.
 */
export function laterPhase(p: Pipeline, seed: number, originals: number, before: GenMessage[][]): GenMessage[] {
  const last = Math.max(...before.flat().map((m) => m.timestamp));
  const [phase] = p.generate(seed, originals, last + 1_000);
  return (phase ?? []).map((m) => ({ ...m, phase: before.length + 1 }));
}

// ---- a TCP proxy that breaks requests -----------------------------------------------

export type RequestKind = 'slice insert' | 'lease claim' | 'checkpoint' | 'other';

export interface BreakingProxy {
  url: string;
  /** requests seen, and how many were broken before and after reaching ClickHouse, per kind of request */
  counts: { requests: number; resetBefore: number; resetAfter: number; broken: Record<string, number> };
  close(): Promise<void>;
}

/** What a request does, from its first bytes (the slice insert carries the slice id as its deduplication token). */
function requestKind(head: string): RequestKind {
  const token = /[?&]insert_deduplication_token=([^&\s]*)/.exec(head)?.[1];
  if (token !== undefined) return decodeURIComponent(token).startsWith('lease:') ? 'lease claim' : 'slice insert';
  if (/INSERT INTO \S*winnow_slices/.test(head)) return 'checkpoint';
  return 'other';
}

/**
 * A TCP proxy in front of ClickHouse's HTTP port that breaks requests with a
 * TCP reset (socket.resetAndDestroy()), either before the request reaches
 * ClickHouse or after ClickHouse executed it and started answering (the
 * client never sees the answer: an insert that happened but looks failed).
 * Slice inserts: the 2nd of every 6 is reset before, the 4th after (a third).
 * Every other request (checkpoints, lease claims, reads): a seeded random
 * `otherShare`, half before, half after. A request is the first client bytes
 * after an answer on a keep-alive connection.
 */
export async function breakingProxy(
  target: { host: string; port: number },
  seed: number,
  otherShare: number,
): Promise<BreakingProxy> {
  const r = rng(seed);
  let inserts = 0;
  const counts: BreakingProxy['counts'] = { requests: 0, resetBefore: 0, resetAfter: 0, broken: {} };
  const tally = (k: string): void => {
    counts.broken[k] = (counts.broken[k] ?? 0) + 1;
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    let answering = true; // true between requests: the next client bytes start a new request
    let breakAfter: RequestKind | undefined;
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('data', (chunk: Buffer) => {
      if (answering) {
        answering = false;
        counts.requests++;
        const kind = requestKind(chunk.toString('latin1'));
        let fate: 'before' | 'after' | undefined;
        if (kind === 'slice insert') {
          inserts++;
          fate = inserts % 6 === 2 ? 'before' : inserts % 6 === 4 ? 'after' : undefined;
        } else {
          const roll = r();
          fate = roll < otherShare / 2 ? 'before' : roll < otherShare ? 'after' : undefined;
        }
        if (fate === 'before') {
          counts.resetBefore++;
          tally(`${kind} before`);
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        breakAfter = fate === 'after' ? kind : undefined;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (breakAfter) {
        counts.resetAfter++;
        tally(`${breakAfter} after`);
        breakAfter = undefined;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      answering = true;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    counts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- consumer group disruption --------------------------------------------------------

/** Committed offsets of a consumer group, per topic/partition. */
export async function groupOffsets(admin: Admin, groupId: string, topics: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const t of await admin.fetchOffsets({ groupId, topics })) {
    for (const p of t.partitions) out.set(`${t.topic}/${p.partition}`, Number(p.offset));
  }
  return out;
}
