/**
 * `winnow index rebuild` on real servers: a rocksdb pipeline runs a few
 * slices beside a scan pipeline fed the same rows; its index is lost
 * (truncated, or entries deleted); the rebuild (the function, then the CLI)
 * writes exactly the entries it had, in several passes, verifies them, and
 * the next slices keep exactly what the scan keeps. The CLI refuses a scan
 * pipeline and a pipeline a daemon holds, in one line.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseFailure, type Db } from '../../src/clickhouse/client.ts';
import { rebuildSeenIndex, verifySeenIndex, type RebuildProgress } from '../../src/operations/index-rebuild.ts';
import { Lease } from '../../src/slicing/lease.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { runCli } from '../support/cli.ts';
import { handFedPipeline, stageRows, type HandFed, type StagedRow } from '../support/hand-fed.ts';
import { servers } from '../support/helpers.ts';
import { rng } from '../support/oracle.ts';

const WINDOW_MS = 60_000;
// The seen keys are partitioned by hour (a window of 1 min: buckets of at least 1 h). The first rows
// straddle the last hour boundary (their times spread over BASE +- 1.5 windows and 3 windows on), so some
// keys are kept in two partitions, whatever the time of day: the CI once ran across a boundary by chance.
const BASE = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 90_000;
const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

function generate(seed: number, n: number, firstMsg: number, offsets: Map<string, number>, drift: number): StagedRow[] {
  const r = rng(seed);
  const out: StagedRow[] = [];
  for (let msg = firstMsg; msg < firstMsg + n; msg++) {
    const partition = Math.floor(r() * 3);
    const k = `a/${partition}`;
    const offset = offsets.get(k) ?? 0;
    offsets.set(k, offset + 1);
    const t = BASE + drift + Math.floor(((msg - firstMsg) / n) * 3 * WINDOW_MS + (r() - 0.5) * 3 * WINDOW_MS);
    out.push({ key: uuid(Math.floor(r() * 400)), msg, t, topic: 'a', partition, offset });
  }
  return out;
}

/** Config file of a hand-fed pipeline, for the CLI. */
async function configFile(h: HandFed): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-rebuild-'));
  const file = path.join(dir, 'winnow.yaml');
  const s = servers();
  const pipeline = {
    name: h.p.name,
    source: { brokers: s.kafkaBrokersForClickHouse, topics: h.p.source.topics },
    columns: h.p.columns.map((c) => ({ name: c.name, type: c.type })),
    dedup: { key: h.p.dedup.key, window: `${WINDOW_MS}ms`, time: 'ingestion', index: h.p.dedup.index },
    sink: { url: s.clickhouseUrl, database: h.db, table: 'events' },
  };
  await writeFile(file, JSON.stringify({ pipelines: [pipeline] }));
  return file;
}

describe('winnow index rebuild', () => {
  let scan: HandFed;
  let kv: HandFed;
  const offsets = { scan: new Map<string, number>(), kv: new Map<string, number>() };
  const entries = async (): Promise<string[]> =>
    (
      await kv.client.rows<{ e: string }>(
        `SELECT concat(toString(h), ' ', toString(__t), ' ', toString(__s)) AS e FROM ${kv.db}.${kv.n.seenKv} ORDER BY h`,
      )
    ).map((r) => r.e);
  const finalMsgs = async (h: HandFed): Promise<number[]> =>
    (await h.client.rows<{ msg: string }>(`SELECT msg FROM ${h.db}.events ORDER BY msg`)).map((r) => Number(r.msg));
  const runBoth = async (): Promise<number> => {
    const a = new Processor(scan.client, scan.p);
    const b = new Processor(kv.client, kv.p);
    let slices = 0;
    for (;;) {
      const [x, y] = [await a.runOneSlice(), await b.runOneSlice()];
      if (!x || !y) {
        expect(y).toEqual(x);
        return slices;
      }
      slices++;
      expect({ inserted: y.slice.inserted, rowsIn: y.slice.rowsIn }).toEqual({
        inserted: x.slice.inserted,
        rowsIn: x.slice.rowsIn,
      });
    }
  };
  const stageBoth = async (seed: number, n: number, firstMsg: number, drift: number): Promise<void> => {
    await stageRows(scan, generate(seed, n, firstMsg, offsets.scan, drift));
    await stageRows(kv, generate(seed, n, firstMsg, offsets.kv, drift));
  };

  beforeAll(async () => {
    scan = await handFedPipeline('rbscan', ['a'], `${WINDOW_MS}ms`, { maxSliceRows: 120 });
    kv = await handFedPipeline('rbkv', ['a'], `${WINDOW_MS}ms`, { maxSliceRows: 120 }, undefined, 'rocksdb');
    await stageBoth(7, 900, 0, 0);
    expect(await runBoth()).toBeGreaterThan(5);
  });
  afterAll(async () => {
    await scan?.client.close();
    await kv?.client.close();
  });

  it('writes, after the index is lost, exactly the entries it had, in passes, and the next slices decide as the scan', async () => {
    const before = await entries();
    expect(before.length).toBeGreaterThan(100);
    await kv.client.command(`TRUNCATE TABLE ${kv.db}.${kv.n.seenKv}`);
    expect(await entries()).toEqual([]);

    const progress: RebuildProgress[] = [];
    // Tiny passes (about 50 keys each), so the passes' ranges and their order are exercised.
    const r = await rebuildSeenIndex(kv.client, kv.p, { keysPerPass: 50, progress: (x) => progress.push(x) });
    expect(r.passes).toBeGreaterThan(5);
    expect(r.partitions).toBeGreaterThanOrEqual(1);
    expect(r.entries).toBe(before.length);
    // Keys kept on both sides of the hour are written once a partition: more puts than entries.
    expect(r.written).toBeGreaterThan(before.length);
    expect(r.missing).toBe(0);
    expect(progress.filter((x) => x.phase === 'write').map((x) => x.pass)).toEqual(
      Array.from({ length: r.passes }, (_, i) => i + 1),
    );
    expect(await entries()).toEqual(before);

    // The next slices (keys repeated from before the loss, times moving on) keep what the scan keeps.
    await stageBoth(8, 600, 900, 2 * WINDOW_MS);
    expect(await runBoth()).toBeGreaterThan(3);
    expect(await finalMsgs(kv)).toEqual(await finalMsgs(scan));
  });

  it('the CLI rebuilds a damaged index, reports it and verifies it', async () => {
    const before = await entries();
    await kv.client.command(`DELETE FROM ${kv.db}.${kv.n.seenKv} WHERE h % 3 = 0`);
    expect((await entries()).length).toBeLessThan(before.length);
    const file = await configFile(kv);
    const out = await runCli(['index', 'rebuild', '--config', file]);
    expect(out.stderr).toMatch(
      /pass 1\/\d+ \(partition \d+, 1\/1, from \d{4}-\d\d-\d\d [\d:.]+\): \d+ entries written/,
    );
    expect(out.stderr).toMatch(/compacting the index \(OPTIMIZE TABLE\)/);
    expect(out.stdout).toMatch(/ s compaction/);
    expect(out.stdout).toMatch(new RegExp(`^pipeline ${kv.p.name}: seen-key index rebuilt: ${before.length} entries`));
    expect(out.stdout).toMatch(/verified: 0 seen keys without their entry/);
    expect(out.code).toBe(0);
    expect(await entries()).toEqual(before);

    // The same pipeline, run on a scan pipeline's config: nothing to rebuild.
    const plain = await runCli(['index', 'rebuild', '--config', await configFile(scan)]);
    expect(plain.code).toBe(2);
    expect(plain.stderr.trim().split('\n')).toHaveLength(1);
    expect(plain.stderr).toMatch(/has no seen-key index to rebuild \(dedup.index is scan/);
  });

  it('the verification counts seen keys whose entry is missing or behind, in every pass', async () => {
    expect(await verifySeenIndex(kv.client, kv.p, 4)).toBe(0);
    const victims = await kv.client.rows<{ hash: string }>(
      `SELECT toString(h) AS hash FROM ${kv.db}.${kv.n.seenKv} ORDER BY __s, h LIMIT 3`,
    );
    expect(victims).toHaveLength(3);
    const list = victims.map((v) => `toUInt128('${v.hash}')`).join(', ');
    await kv.client.command(`DELETE FROM ${kv.db}.${kv.n.seenKv} WHERE h IN (${list})`);
    // One more entry set back a second: older than its key's latest kept time.
    const [behind] = await kv.client.rows<{ hash: string }>(
      `SELECT toString(h) AS hash FROM ${kv.db}.${kv.n.seenKv} ORDER BY h DESC LIMIT 1`,
    );
    await kv.client.command(
      `INSERT INTO ${kv.db}.${kv.n.seenKv} SELECT h, __t - INTERVAL 1 SECOND, __s FROM ${kv.db}.${kv.n.seenKv} WHERE h = toUInt128('${behind?.hash}')`,
    );
    expect(await verifySeenIndex(kv.client, kv.p, 4)).toBe(4);
    expect(await verifySeenIndex(kv.client, kv.p, 1)).toBe(4);
    // A rebuild that loses the lease stops before its next pass, saying so.
    let calls = 0;
    const passes: number[] = [];
    await expect(
      rebuildSeenIndex(kv.client, kv.p, {
        keysPerPass: 100,
        keepLease: () => ++calls <= 2,
        progress: (x) => passes.push(x.pass),
      }),
    ).rejects.toThrow(/lost its lease during the index rebuild/);
    expect(passes).toEqual([1]);
    const r = await rebuildSeenIndex(kv.client, kv.p);
    expect({ passes: r.passes, missing: r.missing }).toEqual({ passes: r.partitions, missing: 0 });
  });

  it('waits for a compaction that outlasts the request timeout: the server goes on with it', async () => {
    // The OPTIMIZE is sent, and its request fails as a timeout does (no answer within request_timeout)
    // while the server runs it to its end; the rebuild waits for it, then verifies.
    const sent: Promise<unknown>[] = [];
    const timingOut: Db = {
      ...kv.client,
      command: async (sql, params, settings) => {
        if (!sql.startsWith('OPTIMIZE')) return kv.client.command(sql, params, settings);
        sent.push(kv.client.command(sql, params, settings));
        throw new ClickHouseFailure('no answer from ClickHouse within the request timeout', undefined, true, null, {
          netCode: 'TIMEOUT',
        });
      },
    };
    const phases: string[] = [];
    const r = await rebuildSeenIndex(timingOut, kv.p, { progress: (x) => phases.push(x.phase) });
    expect(sent).toHaveLength(1);
    await Promise.all(sent);
    expect(r.missing).toBe(0);
    expect(phases).toContain('compact');
    expect(phases.at(-1)).toBe('verify');
  });

  it('refuses, in one line, while a daemon holds the pipeline', async () => {
    const daemon = new Lease(kv.client, kv.db, kv.p.name, { owner: 'host=other pid=1 id=daemon' });
    expect((await daemon.acquire()).held).toBe(true);
    const before = await entries();
    try {
      const out = await runCli(['index', 'rebuild', '--config', await configFile(kv)]);
      expect(out.code).toBe(1);
      expect(out.stderr.trim().split('\n')).toHaveLength(1);
      expect(out.stderr).toMatch(/is run by a daemon \(host=other pid=1 id=daemon\)/);
      expect(await entries()).toEqual(before);
    } finally {
      await daemon.release('test done');
    }
  });

  it('writes the partitions oldest first: a key kept in two partitions ends with its latest kept time and slice', async () => {
    // The seen keys are partitioned by hour here (a window of 1 min: buckets of at least 1 h). One new key
    // kept twice, an hour bucket apart (far more than a window): its older row in the earlier partition.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const older = hour - 1_800_000;
    const newer = hour + 60_000;
    const key = uuid(999_999);
    const seen = `${kv.db}.${kv.n.seen}`;
    const row = (t: number, slice: string): string =>
      `(toUUID('${key}'), fromUnixTimestamp64Milli(toInt64(${t}), 'UTC'), '${slice}')`;
    await kv.client.command(`INSERT INTO ${seen} (event_id, __t, __slice) VALUES ${row(newer, 'slice-newer')}`);
    await kv.client.command(`INSERT INTO ${seen} (event_id, __t, __slice) VALUES ${row(older, 'slice-older')}`);
    const parts = await kv.client.rows<{ n: string }>(
      `SELECT uniqExact(_partition_id) AS n FROM ${seen} WHERE event_id = toUUID('${key}')`,
    );
    expect(Number(parts[0]?.n)).toBe(2);
    const entryOf = async (): Promise<{ t: string; newerSlice: number; olderSlice: number }[]> =>
      kv.client.rows(
        `SELECT toString(toUnixTimestamp64Milli(__t)) AS t, toUInt8(__s = sipHash64('slice-newer')) AS newerSlice,
                toUInt8(__s = sipHash64('slice-older')) AS olderSlice
         FROM ${kv.db}.${kv.n.seenKv} WHERE h = reinterpretAsUInt128(sipHash128(toUUID('${key}')))`,
      );

    const progress: RebuildProgress[] = [];
    const r = await rebuildSeenIndex(kv.client, kv.p, { keysPerPass: 100, progress: (x) => progress.push(x) });
    expect(r.partitions).toBeGreaterThanOrEqual(2);
    expect(await entryOf()).toEqual([{ t: String(newer), newerSlice: 1, olderSlice: 0 }]);
    expect(r.missing).toBe(0);
    // Each write pass names its partition; the partitions come oldest first.
    const writes = progress.filter((x) => x.phase === 'write');
    expect(writes.map((x) => x.pass)).toEqual(Array.from({ length: r.passes }, (_, i) => i + 1));
    const from = writes.map((x) => x.partition?.from ?? '');
    expect(from.every((f) => f !== '')).toBe(true);
    expect([...from].sort()).toEqual(from);

    // Each pass reads only its partition: with one pass a partition, every seen-key row is read once
    // (a pass over all partitions would read them once a pass).
    const largest = Math.max(
      ...(await kv.client.rows<{ n: string }>(`SELECT count() AS n FROM ${seen} GROUP BY _partition_id`)).map((x) =>
        Number(x.n),
      ),
    );
    const once = await rebuildSeenIndex(kv.client, kv.p, { keysPerPass: largest });
    expect(once.passes).toBe(once.partitions);
    expect(once.readRows).toBe(once.seenRows);
    expect(once.missing).toBe(0);
    expect(await entryOf()).toEqual([{ t: String(newer), newerSlice: 1, olderSlice: 0 }]);
  });
});
