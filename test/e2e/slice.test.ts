/**
 * The slice insert against an oracle, with staging filled directly (no Kafka):
 * I1 (no key twice within the window), I2 (every staged message either kept
 * or dropped for a kept twin), greedy first-wins across slices in both time
 * directions, re-delivered Kafka coordinates counted once, a re-run slice adds
 * nothing, a re-run whose first attempt wrote only the seen keys still writes
 * exactly the first attempt's rows, and the kept count of each slice equals
 * the rows it put in the final table. Event times are an hour old: seen keys
 * must outlive them while the backlog is processed. Last, a pipeline built by
 * the real migrations 0001-0004, its seen keys as 0002 first built them (literal
 * SQL: 0002 is frozen as last shipped, with the key hash and write time),
 * upgrades through 0005-0009 and its old seen keys still count.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/clickhouse/client.ts';
import type { PipelineConfig } from '../../src/config/index.ts';
import { objectNames } from '../../src/provisioning/objects.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { countKept, countStaged, dedupInsert, type SliceRange } from '../../src/slicing/slice.ts';
import { dropQueue, handFedPipeline } from '../support/hand-fed.ts';
import { rng } from '../support/oracle.ts';

const WINDOW_MS = 60_000;
// Event times an hour old: older than twice the window, like a backlog caught up late.
const BASE = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

interface Staged {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  /** unique per Kafka message; a re-delivered copy has the same */
  msg: number;
  t: number;
}

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

/** Messages on 2 topics x 2 partitions, keys from a small pool, times out of order, some offsets delivered twice. */
function generate(seed: number, n: number): Staged[] {
  const r = rng(seed);
  const next = new Map<string, number>();
  const out: Staged[] = [];
  for (let msg = 0; msg < n; msg++) {
    const topic = r() < 0.5 ? 'a' : 'b';
    const partition = r() < 0.5 ? 0 : 1;
    const k = `${topic}/${partition}`;
    const offset = next.get(k) ?? 0;
    next.set(k, offset + 1);
    // Time drifts forward over about 4 windows with jitter of +-1.5 windows, so slices see priors both ways.
    const t = BASE + Math.floor((msg / n) * 4 * WINDOW_MS + (r() - 0.5) * 3 * WINDOW_MS);
    const row = { topic, partition, offset, key: uuid(Math.floor(r() * n * 0.3)), msg, t };
    out.push(row);
    // A re-delivery: the same coordinates again, consumed later (ingestion time differs).
    if (r() < 0.05) out.push({ ...row, t: row.t + Math.floor(r() * 2 * WINDOW_MS) });
  }
  return out;
}

/** ARCHITECTURE.md's greedy first-wins, slice by slice: the messages each slice keeps. */
function oracle(rows: Staged[], slices: SliceRange[][]): number[][] {
  const kept = new Map<string, number[]>();
  return slices.map((ranges) => {
    const inSlice = rows.filter((s) =>
      ranges.some(
        (g) => g.topic === s.topic && g.partition === s.partition && s.offset >= g.fromOffset && s.offset <= g.toOffset,
      ),
    );
    const cmp = (x: Staged, y: Staged): number =>
      x.t - y.t || x.topic.localeCompare(y.topic) || x.partition - y.partition || x.offset - y.offset;
    const seenCoord = new Set<string>();
    const out: number[] = [];
    for (const s of [...inSlice].sort(cmp)) {
      const coord = `${s.topic}/${s.partition}/${s.offset}`;
      if (seenCoord.has(coord)) continue; // a re-delivered copy is the same message
      seenCoord.add(coord);
      const times = kept.get(s.key) ?? [];
      if (times.some((k) => Math.abs(k - s.t) < WINDOW_MS)) continue;
      kept.set(s.key, [...times, s.t]);
      out.push(s.msg);
    }
    return out;
  });
}

// The same oracle through both ways of finding kept times: the scan of the seen keys, and the
// RocksDB seen-key index (dedup.index rocksdb), whose re-runs and out-of-order keys fall back to
// the seen keys.
describe.each(['scan', 'rocksdb'] as const)('slice insert (dedup.index %s)', (index) => {
  let db: string;
  let p: PipelineConfig;
  let client: Db;
  let n: ReturnType<typeof objectNames>;

  const stage = async (rows: Staged[]): Promise<void> => {
    const values = rows
      .map(
        (s) =>
          `('${s.key}', ${s.msg}, 'payload ${s.msg}', fromUnixTimestamp64Milli(toInt64(${s.t}), 'UTC'), '${s.topic}', ${s.partition}, ${s.offset}, NULL, now64(3))`,
      )
      .join(',\n');
    await client.command(
      `INSERT INTO ${db}.${n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at) VALUES ${values}`,
    );
  };
  const finalMsgs = async (): Promise<number[]> =>
    (await client.rows<{ msg: string }>(`SELECT msg FROM ${db}.events ORDER BY msg`)).map((r) => Number(r.msg));

  beforeAll(async () => {
    ({ db, p, n, client } = await handFedPipeline(
      'slice',
      ['a', 'b'],
      `${WINDOW_MS}ms`,
      { maxSliceRows: 120 },
      undefined,
      index,
    ));
  });

  afterAll(async () => {
    await client?.close();
  });

  it('keeps exactly the greedy first occurrences, slice after slice, and counts what each slice kept', async () => {
    const rows = generate(7, 900);
    await stage(rows);
    const proc = new Processor(client, p);
    const slices: SliceRange[][] = [];
    let keptSum = 0;
    let inSum = 0;
    for (;;) {
      const before = (await finalMsgs()).length;
      const out = await proc.runOneSlice();
      if (!out) break;
      slices.push(out.slice.ranges);
      // The kept count of a slice is what it added; re-running it adds nothing and counts the same.
      expect((await finalMsgs()).length - before).toBe(out.slice.inserted);
      keptSum += out.slice.inserted;
      inSum += out.slice.rowsIn;
      await dedupInsert(client, p, out.slice.sliceId, out.slice.ranges);
      expect((await finalMsgs()).length - before).toBe(out.slice.inserted);
      expect(await countKept(client, p, out.slice.sliceId, out.slice.ranges)).toBe(out.slice.inserted);
    }
    expect(slices.length).toBeGreaterThan(5);
    const expected = oracle(rows, slices)
      .flat()
      .sort((a, b) => a - b);
    expect(await finalMsgs()).toEqual(expected);
    expect(keptSum).toBe(expected.length);
    expect(inSum).toBe(new Set(rows.map((r) => r.msg)).size);
    const dup = await client.rows<{ n: string }>(
      `SELECT count() AS n FROM (SELECT msg FROM ${db}.events GROUP BY msg HAVING count() > 1)`,
    );
    expect(Number(dup[0]?.n)).toBe(0);
  });

  it("re-runs a slice whose first attempt wrote only the seen keys into exactly the first attempt's rows", async () => {
    // A new key range far later, so earlier slices do not interfere.
    const later = generate(11, 300).map((s) => ({
      ...s,
      key: uuid(100_000 + Number.parseInt(s.key.slice(-12), 16)),
      msg: s.msg + 100_000,
      t: s.t + 100 * WINDOW_MS,
    }));
    const offsets = await client.rows<{ topic: string; partition: number; next: string }>(
      `SELECT _topic AS topic, _partition AS partition, max(_offset) + 1 AS next FROM ${db}.${n.staging} GROUP BY topic, partition`,
    );
    const shift = new Map(offsets.map((o) => [`${o.topic}/${o.partition}`, Number(o.next)]));
    const moved = later.map((s) => ({ ...s, offset: s.offset + (shift.get(`${s.topic}/${s.partition}`) ?? 0) }));
    await stage(moved);
    const ranges: SliceRange[] = [...shift.entries()].map(([k, from]) => {
      const [topic, partition] = k.split('/');
      const to = Math.max(...moved.filter((s) => `${s.topic}/${s.partition}` === k).map((s) => s.offset));
      return { topic: topic!, partition: Number(partition), fromOffset: from, toOffset: to };
    });
    const sliceId = `${p.name}-manual-1`;
    const expected = oracle(moved, [ranges])[0]!.sort((a, b) => a - b);
    // The first attempt's seen keys, as if the final table had refused its rows.
    // (one per kept message: a re-delivered copy is not a second kept row)
    const keys = moved.filter((s, i) => expected.includes(s.msg) && moved.findIndex((o) => o.msg === s.msg) === i);
    await client.command(
      `INSERT INTO ${db}.${n.seen} (event_id, __t, __slice) VALUES ${keys.map((s) => `('${s.key}', fromUnixTimestamp64Milli(toInt64(${s.t}), 'UTC'), '${sliceId}')`).join(', ')}`,
    );
    // With the seen-key index, the first attempt's view also wrote their entries (latest time per key, this slice).
    if (index === 'rocksdb') {
      await client.command(
        `INSERT INTO ${db}.${n.seenKv} (h, __t, __s)
         SELECT reinterpretAsUInt128(sipHash128(event_id)), max(__t), sipHash64({s:String}) FROM ${db}.${n.seen}
         WHERE __slice = {s:String} GROUP BY event_id`,
        { s: sliceId },
      );
    }
    const before = await finalMsgs();
    await dedupInsert(client, p, sliceId, ranges);
    const added = (await finalMsgs()).filter((m) => !before.includes(m));
    expect(added).toEqual(expected);
    expect(await countKept(client, p, sliceId, ranges)).toBe(expected.length);
    expect(await countStaged(client, p, ranges)).toBe(new Set(moved.map((s) => s.msg)).size);
  });
});

describe('upgrade of a pipeline created before 0005', () => {
  it('adds the key hash and the write time, and old seen keys still block their duplicates', async () => {
    const h = await handFedPipeline('up5', ['a'], '1h', {}, '0004_replays_and_checks');
    const { db, p, n, client, migrator } = h;
    try {
      // Seen keys as 0002 built them before 0005 existed (first shipped, ad4a3ad): without __h
      // and __at, TTL from __t. Today's 0002 (frozen as last shipped) builds them with both.
      const seenTable = `${db}.${n.seen}`;
      await client.command(`DROP VIEW IF EXISTS ${db}.${n.keptToSeenMv} SYNC`);
      await client.command(`DROP TABLE IF EXISTS ${seenTable} SYNC`);
      await client.command(`CREATE TABLE IF NOT EXISTS ${seenTable}
(
    \`event_id\` UUID,
    \`__t\` DateTime64(3, 'UTC'),
    \`__slice\` String
)
ENGINE = MergeTree
PARTITION BY toStartOfInterval(\`__t\`, INTERVAL 3600 SECOND)
ORDER BY (\`event_id\`)
TTL toDateTime(\`__t\`) + INTERVAL 7200 SECOND
SETTINGS non_replicated_deduplication_window = 10000`);
      await client.command(
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${n.keptToSeenMv} TO ${seenTable}\nAS SELECT \`event_id\`, \`__t\`, \`__slice\` FROM ${db}.${n.kept}`,
      );
      const before = await client.rows<{ name: string }>(
        `SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}`,
        { d: db, t: n.seen },
      );
      expect(before.map((c) => c.name)).not.toContain('__h');
      // Keys an old slice kept 10 minutes ago.
      await client.command(
        `INSERT INTO ${db}.${n.seen} (event_id, __t, __slice) SELECT toUUID(concat('00000000-0000-4000-8000-', leftPad(toString(number), 12, '0'))), now64(3) - INTERVAL 10 MINUTE, 'old-1' FROM numbers(50)`,
      );
      expect((await migrator.status()).filter((m) => !m.executed).map((m) => m.name)).toEqual([
        '0005_seen_hash_and_write_time',
        '0006_slices_deduplication',
        '0007_slice_refusals',
        '0008_repairs',
        '0009_parse_once_and_queue_flush',
        '0010_lease_release',
        '0011_refuse_empty_keys',
        '0012_replay_jobs',
        '0013_seen_kv',
        '0014_seen_kv_view',
        '0015_seen_kv_carried_entry',
      ]);

      await migrator.up({ dryRun: false, kafkaPassword: undefined, print: () => undefined });
      await dropQueue(h);

      const cols = await client.rows<{ name: string }>(
        `SELECT name FROM system.columns WHERE database = {d:String} AND table = {t:String}`,
        { d: db, t: n.seen },
      );
      expect(cols.map((c) => c.name)).toEqual(expect.arrayContaining(['__h', '__at']));
      const ddl = await client.rows<{ q: string }>(
        `SELECT create_table_query AS q FROM system.tables WHERE database = {d:String} AND name = {t:String}`,
        { d: db, t: n.seen },
      );
      expect(ddl[0]?.q).toContain('greatest(toDateTime(__t), __at)');
      // Staged now: the 50 old keys again and 50 new ones; only the new ones are kept.
      await client.command(
        `INSERT INTO ${db}.${n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
         SELECT toUUID(concat('00000000-0000-4000-8000-', leftPad(toString(number), 12, '0'))), number, 'p', now64(3), 'a', 0, number, NULL, now64(3) FROM numbers(100)`,
      );
      const out = await new Processor(client, p).runOneSlice();
      expect(out?.slice.rowsIn).toBe(100);
      expect(out?.slice.inserted).toBe(50);
      const kept = await client.rows<{ m: string }>(`SELECT min(msg) AS m FROM ${db}.events`);
      expect(Number(kept[0]?.m)).toBe(50);
    } finally {
      await client.close();
    }
  });
});
