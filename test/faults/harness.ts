/**
 * The fault suite's harness. Every fault test file starts its own embedded
 * ClickHouse and Kafka (fixed free ports picked once, so a server can be
 * killed and started again on the same data directory and address), drives
 * the real `winnow` command as a user would, feeds a seeded stream with a
 * known duplicate structure (test/support/oracle.ts) and ends with the oracle's
 * exact check of the final table and of the counts.
 *
 * Invariants every scenario checks at its end: I1 uniqueness, I2
 * completeness, I3 first wins (the final table equals the oracle's rows as a
 * multiset: 0 lost, 0 doubled), I4 nothing lost (staging holds every valid
 * message, the dead letters every malformed one, the seen keys exactly the
 * final rows' keys, and the stats reconcile), I6 crash safety (the fault
 * changed nothing).
 *
 * This module holds a scenario's pipeline (topics, config, migration, the
 * daemon's start, progress polling; its exact check is in verify.ts) and
 * re-exports the rest, so a scenario imports this one module:
 *   servers.ts  the restartable ClickHouse and Kafka of a test file
 *   daemon.ts   `winnow run` as a child process
 *   stream.ts   producing the stream, reading it back, group offsets
 *   proxy.ts    the TCP proxy that breaks requests
 *   verify.ts   the exact check at a scenario's end (Pipeline.verify)
 *   common.ts   the window, hex names, a waitFor that tolerates servers being down
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { runCli } from '../support/cli.ts';
import { generate, type GenMessage } from '../support/oracle.ts';
import { hex, waitFor, WINDOW_MS } from './common.ts';
import { DaemonProc } from './daemon.ts';
import type { Servers } from './servers.ts';
import { produce } from './stream.ts';
import { verifyPipeline } from './verify.ts';

export { hex, waitFor, WINDOW_MS } from './common.ts';
export { DaemonProc, type LogLine } from './daemon.ts';
export { breakingProxy, type BreakingProxy, type RequestKind } from './proxy.ts';
export { Servers, type Ports } from './servers.ts';
export { groupOffsets, produce, readLog, type ProduceOptions } from './stream.ts';
export { diff } from './verify.ts';

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
  /** dedup.index (default scan) */
  index?: 'scan' | 'rocksdb';
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
      index: ${this.opts.index ?? 'scan'}
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

  /**
   * The start of a crash scenario: phase 1 produced and staged (so slice `slice` exists and every slice
   * is full), then a daemon with WINNOW_FAULT=<step>@<slice>, which must SIGKILL itself there within 90 s.
   */
  async killedAt(step: string, slice: number, phase1: GenMessage[]): Promise<DaemonProc> {
    await produce(this.servers.kafkaClient(), phase1);
    await this.waitConsumed(phase1);
    const faulty = await this.startDaemon({ WINNOW_FAULT: `${step}@${slice}` });
    const exit = await Promise.race([faulty.exited, sleep(90_000).then(() => undefined)]);
    expect(exit, `the daemon with WINNOW_FAULT=${step}@${slice} did not die:\n${faulty.logs}`).toEqual({
      code: null,
      signal: 'SIGKILL',
    });
    return faulty;
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
    const [st] = await this.query<{
      staged: string;
      errors: string;
      inserted: string;
      dups: string;
      rows_in: string;
      rejected: string;
    }>(
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
    await waitFor(
      () => this.progress(),
      (s) => s.messagesConsumed >= total,
      timeoutMs,
      `${this.name}: ClickHouse to consume ${total} messages`,
    );
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
      for (const t of this.topics)
        for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high) - Number(p.low);
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
  async verify(
    scenario: string,
    phases: GenMessage[][],
    note = '',
    refusedKeys: ReadonlySet<string> = new Set(),
  ): Promise<string> {
    return verifyPipeline(this, scenario, phases, note, refusedKeys);
  }

  async close(): Promise<void> {
    await this.ch.close();
  }
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
