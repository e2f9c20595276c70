/**
 * dedup.index rocksdb against the scan, on real servers: two pipelines, one
 * with each index, fed the same staged rows (several topics and partitions,
 * keys repeated across slices, times out of order by more than a window, some
 * offsets delivered twice) keep exactly the same rows, slice after slice, and
 * count the same. Then `winnow check`'s seen-key index part: entries deleted
 * from the index are found (the seen keys that lack them) and written again,
 * and the next check finds nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checker } from '../../src/operations/checker.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { handFedPipeline, stageRows, type HandFed, type StagedRow } from '../support/hand-fed.ts';
import { rng } from '../support/oracle.ts';

const WINDOW_MS = 60_000;
const BASE = Math.floor(Date.now() / 1000) * 1000 - 600_000;
const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

function generate(seed: number, n: number): StagedRow[] {
  const r = rng(seed);
  const next = new Map<string, number>();
  const out: StagedRow[] = [];
  for (let msg = 0; msg < n; msg++) {
    const topic = r() < 0.5 ? 'a' : 'b';
    const partition = Math.floor(r() * 3);
    const k = `${topic}/${partition}`;
    const offset = next.get(k) ?? 0;
    next.set(k, offset + 1);
    // Drifts over 6 windows, jitter of +-2 windows: late occurrences older than a later kept one.
    const t = BASE + Math.floor((msg / n) * 6 * WINDOW_MS + (r() - 0.5) * 4 * WINDOW_MS);
    const row = { key: uuid(Math.floor(r() * n * 0.25)), msg, t, topic, partition, offset };
    out.push(row);
    if (r() < 0.04) out.push({ ...row, t: row.t + Math.floor(r() * WINDOW_MS) });
  }
  return out;
}

describe('dedup.index rocksdb', () => {
  let scan: HandFed;
  let kv: HandFed;
  const finalMsgs = async (h: HandFed): Promise<number[]> =>
    (await h.client.rows<{ msg: string }>(`SELECT msg FROM ${h.db}.events ORDER BY msg`)).map((r) => Number(r.msg));

  beforeAll(async () => {
    scan = await handFedPipeline('idxscan', ['a', 'b'], `${WINDOW_MS}ms`, { maxSliceRows: 150 });
    kv = await handFedPipeline('idxkv', ['a', 'b'], `${WINDOW_MS}ms`, { maxSliceRows: 150 }, undefined, 'rocksdb');
  });
  afterAll(async () => {
    await scan?.client.close();
    await kv?.client.close();
  });

  it('keeps, slice after slice, exactly what the scan keeps', async () => {
    const rows = generate(20261130, 1500);
    await stageRows(scan, rows);
    await stageRows(kv, rows);
    const a = new Processor(scan.client, scan.p);
    const b = new Processor(kv.client, kv.p);
    let slices = 0;
    for (;;) {
      const [x, y] = [await a.runOneSlice(), await b.runOneSlice()];
      expect(y?.slice.ranges).toEqual(x?.slice.ranges);
      if (!x || !y) break;
      slices++;
      expect({ seq: y.slice.seq, inserted: y.slice.inserted, rowsIn: y.slice.rowsIn }).toEqual({
        seq: x.slice.seq,
        inserted: x.slice.inserted,
        rowsIn: x.slice.rowsIn,
      });
    }
    expect(slices).toBeGreaterThan(8);
    const kept = await finalMsgs(scan);
    expect(kept.length).toBeGreaterThan(100);
    expect(kept.length).toBeLessThan(new Set(rows.map((r) => r.msg)).size);
    expect(await finalMsgs(kv)).toEqual(kept);
    // The index holds one entry per kept key, at its latest kept time.
    const [entries] = await kv.client.rows<{ n: string; behind: string }>(
      `SELECT count() AS n, countIf(e.__t != s.t) AS behind FROM ${kv.db}.${kv.n.seenKv} AS e
       INNER JOIN (SELECT reinterpretAsUInt128(sipHash128(event_id)) AS h, max(__t) AS t FROM ${kv.db}.${kv.n.seen} GROUP BY h) AS s
       ON e.h = s.h`,
    );
    const [keys] = await kv.client.rows<{ n: string }>(`SELECT uniqExact(event_id) AS n FROM ${kv.db}.events`);
    expect(Number(entries?.n)).toBe(Number(keys?.n));
    expect(Number(entries?.behind)).toBe(0);
  });

  it('check finds seen keys whose index entry is gone and writes them again', async () => {
    const checker = new Checker(kv.client, kv.p);
    const clean = await checker.run({ repair: true, full: true });
    expect(clean.seenIndex).toEqual({ ok: true, checked: true, missing: 0, repaired: 0 });
    expect(clean.ok).toBe(true);
    const victims = await kv.client.rows<{ hash: string; t: string }>(
      `SELECT toString(h) AS hash, toString(__t) AS t FROM ${kv.db}.${kv.n.seenKv} ORDER BY h LIMIT 5`,
    );
    expect(victims).toHaveLength(5);
    await kv.client.command(
      `DELETE FROM ${kv.db}.${kv.n.seenKv} WHERE h IN (${victims.map((v) => `toUInt128('${v.hash}')`).join(', ')})`,
    );
    const gone = await kv.client.rows<{ n: string }>(`SELECT count() AS n FROM ${kv.db}.${kv.n.seenKv}
       WHERE h IN (${victims.map((v) => `toUInt128('${v.hash}')`).join(', ')})`);
    expect(Number(gone[0]?.n)).toBe(0);

    const reportOnly = await checker.run({ repair: false, full: true });
    expect(reportOnly.seenIndex).toEqual({ ok: false, checked: true, missing: 5, repaired: 0 });
    expect(reportOnly.ok).toBe(false);

    const repaired = await checker.run({ repair: true, full: true });
    expect(repaired.seenIndex).toEqual({ ok: true, checked: true, missing: 5, repaired: 5 });
    const back = await kv.client.rows<{ hash: string; t: string }>(
      `SELECT toString(h) AS hash, toString(__t) AS t FROM ${kv.db}.${kv.n.seenKv}
       WHERE h IN (${victims.map((v) => `toUInt128('${v.hash}')`).join(', ')}) ORDER BY h`,
    );
    expect(back).toEqual(victims);
    const after = await checker.run({ repair: true, full: true });
    expect(after.seenIndex).toEqual({ ok: true, checked: true, missing: 0, repaired: 0 });

    // The scan pipeline's check has no index to look at.
    const plain = await new Checker(scan.client, scan.p).run({ repair: true, full: true });
    expect(plain.seenIndex).toEqual({ ok: true, checked: false, missing: 0, repaired: 0 });
  });
});
