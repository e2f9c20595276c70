/**
 * /metrics of a real `winnow run` on the real servers, read back with a
 * Prometheus text parser from npm: after a seeded stream, the daemon's
 * counters say exactly what the oracle says was kept, dropped and
 * dead-lettered; histograms have buckets, sum and count; the lease, build and
 * process metrics are there; and `migrate down` (the tables gone) lowers no
 * counter.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startDaemon, type Daemon } from '../support/cli.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';
import { expectedRows, generate, MALFORMED, type GenMessage } from '../support/oracle.ts';
import { parseScrape, sampleValue, type Scrape } from '../support/prom-text.ts';

const WINDOW_MS = 10 * 60_000;

async function produce(msgs: GenMessage[]): Promise<void> {
  const producer = kafka().producer();
  await producer.connect();
  try {
    for (let i = 0; i < msgs.length; i += 500) {
      const batch = msgs.slice(i, i + 500);
      await producer.sendBatch({
        topicMessages: batch.map((m) => ({
          topic: m.topic,
          messages: [{ partition: m.partition, timestamp: String(m.timestamp), value: m.value }],
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

describe('/metrics of a running daemon', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let configFile: string;
  let daemon: Daemon | undefined;
  const name = uniqueName('metrics');
  const topic = uniqueName('metrics_a');
  const topic2 = uniqueName('metrics_b');
  const baseTime = Date.now() - 60_000;
  const phases = generate(20261130, 400, {
    topics: [
      { name: topic, partitions: 2 },
      { name: topic2, partitions: 1 },
    ],
    windowMs: WINDOW_MS,
    baseTime,
  });
  const all = phases.flat();
  const valid = all.length - MALFORMED.length;
  const kept = expectedRows(phases, WINDOW_MS).length;
  const l = { pipeline: name };

  const scrape = async (): Promise<Scrape> => {
    const res = await fetch(`${daemon!.api}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseScrape(await res.text());
  };
  const counter = (s: Scrape, metric: string, labels: Record<string, string> = {}): number => {
    const v = sampleValue(s, metric, { ...l, ...labels });
    expect(v, `${metric}${JSON.stringify(labels)}`).toBeTypeOf('number');
    return v!;
  };

  beforeAll(async () => {
    db = await freshDatabase('winnow_metrics');
    await createTopic(topic, 2);
    await createTopic(topic2, 1);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-metrics-'));
    configFile = path.join(dir, 'winnow.yaml');
    const s = servers();
    await writeFile(
      configFile,
      `pipelines:
  - name: ${name}
    source:
      brokers: [${s.kafkaBrokersForClickHouse.join(', ')}]
      topics: [${topic}, ${topic2}]
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
      checkInterval: 2s
      maxSliceRows: 150
`,
    );
    const up = await runCli(['migrate', 'up', '--config', configFile]);
    expect(up.code, up.stderr).toBe(0);
  });

  afterAll(async () => {
    await daemon?.stop();
    await db?.client.close();
  });

  it('counts what the oracle says, in counters, histograms and gauges; build and process metrics', async () => {
    daemon = await startDaemon(configFile);
    // The lease holder before anything is produced: every counter at zero, the baseline of the dead letters.
    let s = await waitFor(scrape, (x) => sampleValue(x, 'winnow_lease_held', l) === 1, 60_000, 'the lease');
    expect(counter(s, 'winnow_events_inserted_total')).toBe(0);
    expect(counter(s, 'winnow_dead_letters_total', { reason: 'invalid' })).toBe(0);
    expect(sampleValue(s, 'winnow_build_info', { node_version: process.version })).toBe(1);
    expect(sampleValue(s, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(s.families.get('process_cpu_seconds_total')?.type).toBe('COUNTER');

    await produce(all);
    s = await waitFor(
      scrape,
      (x) =>
        sampleValue(x, 'winnow_events_consumed_total', l) === valid &&
        sampleValue(x, 'winnow_dead_letters_total', { ...l, reason: 'invalid' }) === MALFORMED.length &&
        sampleValue(x, 'winnow_pending_rows', l) === 0,
      120_000,
      `the daemon to take ${valid} messages and see ${MALFORMED.length} dead letters`,
    );
    expect(counter(s, 'winnow_events_inserted_total')).toBe(kept);
    expect(counter(s, 'winnow_duplicates_dropped_total')).toBe(valid - kept);
    expect(counter(s, 'winnow_dead_letters_total', { reason: 'refused' })).toBe(0);
    expect(counter(s, 'winnow_slices_failed_total')).toBe(0);
    const committed = Number(
      (
        await db.client
          .query({
            query: `SELECT uniqExact(seq) AS n FROM winnow_slices WHERE pipeline = {p:String} AND status = 'committed'`,
            query_params: { p: name },
            format: 'JSONEachRow',
          })
          .then((r) => r.json<{ n: string }>())
      )[0]?.n,
    );
    expect(counter(s, 'winnow_slices_committed_total')).toBe(committed);

    // Histograms: one observation per committed slice, cumulative buckets up to +Inf = count.
    for (const h of ['winnow_slice_duration_seconds', 'winnow_slice_rows', 'winnow_end_to_end_latency_seconds']) {
      expect(s.families.get(h)?.type, h).toBe('HISTOGRAM');
      const count = counter(s, `${h}_count`);
      expect(count, h).toBe(committed);
      expect(counter(s, `${h}_bucket`, { le: '+Inf' }), h).toBe(count);
      expect(counter(s, `${h}_sum`), h).toBeGreaterThan(0);
      const buckets = (s.samples.get(`${h}_bucket`) ?? []).filter((b) => b.labels['pipeline'] === name);
      expect(buckets.length, h).toBeGreaterThan(3);
      const values = buckets.map((b) => b.value);
      expect(values, h).toEqual([...values].sort((a, b) => a - b));
    }
    expect(counter(s, 'winnow_slice_rows_sum')).toBe(valid);
    expect(committed).toBeGreaterThanOrEqual(Math.ceil(valid / 150));
    // The oracle's Kafka timestamps are at most a minute and a half older than now: so is the latency.
    const latencyMax = (Date.now() - baseTime) / 1000 + 120;
    expect(counter(s, 'winnow_end_to_end_latency_seconds_sum')).toBeLessThan(committed * latencyMax);

    // Gauges: caught up, lease held, recent success, the check ran and found the pipeline consistent.
    for (const [t, p] of [
      [topic, '0'],
      [topic, '1'],
      [topic2, '0'],
    ] as const) {
      expect(counter(s, 'winnow_partition_lag_messages', { topic: t, partition: p })).toBe(0);
      expect(counter(s, 'winnow_partition_lag_seconds', { topic: t, partition: p })).toBe(0);
    }
    expect(counter(s, 'winnow_staging_rows')).toBe(valid);
    expect(counter(s, 'winnow_dead_letter_rows')).toBe(MALFORMED.length);
    expect(counter(s, 'winnow_lease_held')).toBe(1);
    expect(Date.now() / 1000 - counter(s, 'winnow_last_success_timestamp_seconds')).toBeLessThan(60);
    s = await waitFor(scrape, (x) => sampleValue(x, 'winnow_consistency_ok', l) !== undefined, 60_000, 'a check');
    expect(counter(s, 'winnow_consistency_ok')).toBe(1);
    expect(Date.now() / 1000 - counter(s, 'winnow_consistency_check_timestamp_seconds')).toBeLessThan(60);
    expect(counter(s, 'winnow_consistency_checks_total', { result: 'ok' })).toBeGreaterThan(0);
    process.stderr.write(
      `metrics e2e: ${valid} valid, ${kept} kept, ${valid - kept} dropped, ${MALFORMED.length} dead letters, ${committed} slices\n`,
    );
  });

  it('a second daemon stands by: its lease gauge is 0 and its counters stay at 0', async () => {
    const standby = await startDaemon(configFile);
    try {
      const res = await waitFor(
        async () => parseScrape(await (await fetch(`${standby.api}/metrics`)).text()),
        (x) => sampleValue(x, 'winnow_lease_held', l) === 0 && sampleValue(x, 'winnow_up') === 1,
        60_000,
        'the standby ready',
      );
      expect(counter(res, 'winnow_events_inserted_total')).toBe(0);
      expect(counter(res, 'winnow_slices_committed_total')).toBe(0);
      expect(counter(await scrape(), 'winnow_lease_held')).toBe(1);
    } finally {
      expect(await standby.stop()).toBe(0);
    }
  });

  it('a replay job run by the daemon is counted as started and done; it adds no row, so no insert', async () => {
    const r = await runCli([
      'replay',
      '--config',
      configFile,
      '--from-offsets',
      `${topic}/0:0,${topic}/1:0,${topic2}/0:0`,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const s = await waitFor(
      scrape,
      (x) => sampleValue(x, 'winnow_replay_jobs_total', { ...l, event: 'done' }) === 1,
      60_000,
      'the replay job done',
    );
    expect(counter(s, 'winnow_replay_jobs_total', { event: 'started' })).toBe(1);
    expect(counter(s, 'winnow_replay_jobs_total', { event: 'failed' })).toBe(0);
    expect(counter(s, 'winnow_events_inserted_total')).toBe(kept);
  });

  it('migrate down drops the tables, and no counter falls', async () => {
    const before = await scrape();
    const totals = (s: Scrape) =>
      Object.fromEntries(
        [...s.samples.entries()]
          .filter(([n]) => n.startsWith('winnow_') && (n.endsWith('_total') || n.endsWith('_count')))
          .flatMap(([n, samples]) =>
            samples
              .filter((x) => x.labels['pipeline'] === name)
              .map((x) => [`${n}${JSON.stringify(x.labels)}`, x.value]),
          ),
      );
    const down = await runCli(['migrate', 'down', '--config', configFile, '--yes']);
    expect(down.code, down.stderr).toBe(0);
    const after = await waitFor(
      scrape,
      (x) => sampleValue(x, 'winnow_stats_error', l) === 1,
      60_000,
      'the scrape to see the tables gone',
    );
    const was = totals(before);
    const now = totals(after);
    expect(Object.keys(was).length).toBeGreaterThan(10);
    for (const [series, v] of Object.entries(was)) expect(now[series], series).toBeGreaterThanOrEqual(v);
    expect(now[`winnow_events_inserted_total${JSON.stringify(l)}`]).toBe(kept);
  });
});
