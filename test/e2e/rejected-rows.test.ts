/**
 * A final table that refuses some rows (a CHECK constraint) must not stall the
 * pipeline: the slice is split until the refused messages stand alone, they
 * go to the dead letters with ClickHouse's error, and everything else is
 * committed exactly once. Invariants: I1, I2 for every accepted message (a
 * refused occurrence is not kept, so a later occurrence of its key is), I4
 * (every staged message is inserted, a duplicate, or refused and dead-lettered;
 * no seen key without its final row), no slice committed twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/clickhouse/client.ts';
import type { PipelineConfig } from '../../src/config/index.ts';
import type { ObjectNames } from '../../src/provisioning/objects.ts';
import { Checker } from '../../src/operations/checker.ts';
import { replayDeadLetters } from '../../src/operations/deadletters.ts';
import { Processor, TABLE_WIDE_REFUSALS } from '../../src/slicing/processor.ts';
import { Replayer } from '../../src/operations/replay.ts';
import { REFUSED_BY_FINAL } from '../../src/slicing/rejections.ts';
import { handFedPipeline } from '../support/hand-fed.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

// Both seen-key lookups: with dedup.index rocksdb the refused attempt's view may write index
// entries for keys it did not keep; they must not block a later occurrence (offset 730 below).
describe.each(['scan', 'rocksdb'] as const)('rows the final table refuses (dedup.index %s)', (index) => {
  let db: string;
  let p: PipelineConfig;
  let n: ObjectNames;
  let client: Db;

  beforeAll(async () => {
    ({ db, p, n, client } = await handFedPipeline('refuse', ['a'], '1h', { maxSliceRows: 400 }, undefined, index));
    await client.command(`ALTER TABLE ${db}.events ADD CONSTRAINT no_bad CHECK payload NOT LIKE 'bad%'`);
  });

  afterAll(async () => {
    await client?.close();
  });

  it('dead-letters exactly the refused messages and commits the rest once', async () => {
    // 1000 messages on four partitions; keys repeat every 700 messages; five are refused,
    // and the key of one refused message (offset 30 of partition 0) comes again, acceptable, later.
    const bad = new Set([30, 31, 377, 640, 699]);
    const rows: string[] = [];
    for (let m = 0; m < 1000; m++) {
      const partition = m % 4;
      const offset = Math.floor(m / 4);
      const payload = bad.has(m) ? `bad ${m}` : `ok ${m}`;
      rows.push(`('${uuid(m % 700)}', ${m}, '${payload}', now64(3), 'a', ${partition}, ${offset}, NULL, now64(3))`);
    }
    await client.command(
      `INSERT INTO ${db}.${n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at) VALUES ${rows.join(',')}`,
    );

    const proc = new Processor(client, p);
    let ticks = 0;
    let splits = 0;
    for (;;) {
      const out = await proc.runOneSlice();
      if (!out) break;
      if (out.split) splits++;
      expect(++ticks).toBeLessThan(200);
    }
    expect(splits).toBeGreaterThan(0);
    process.stderr.write(`refusal isolation: ${ticks} ticks, ${splits} splits\n`);

    // Final: the first acceptable occurrence of every key. Keys 0..299 occur twice (m and m+700):
    // m kept unless refused, then m+700 is kept instead.
    const expected: number[] = [];
    for (let k = 0; k < 700; k++) {
      if (!bad.has(k)) expected.push(k);
      else if (k + 700 < 1000 && !bad.has(k + 700)) expected.push(k + 700);
    }
    const final = (await client.rows<{ msg: string }>(`SELECT msg FROM ${db}.events ORDER BY msg`)).map((r) =>
      Number(r.msg),
    );
    expect(final).toEqual(expected.sort((a, b) => a - b));

    const letters = await client.rows<{ partition: number; offset: string; error: string }>(
      `SELECT _partition AS partition, _offset AS offset, __error AS error FROM ${db}.${n.errors} ORDER BY partition, offset`,
    );
    expect(letters.map((l) => Number(l.offset) * 4 + l.partition).sort((a, b) => a - b)).toEqual(
      [...bad].sort((a, b) => a - b),
    );
    for (const l of letters) {
      expect(l.error.startsWith(REFUSED_BY_FINAL)).toBe(true);
      expect(l.error).toMatch(/no_bad/);
    }

    // No seen key without its final row; counts reconcile; no slice committed twice.
    const [seen] = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.${n.seen}`);
    expect(Number(seen?.n)).toBe(expected.length);
    const [sums] = await client.rows<{
      rows_in: string;
      inserted: string;
      duplicates: string;
      rejected: string;
      twice: string;
    }>(
      `SELECT sum(rows_in) AS rows_in, sum(inserted) AS inserted, sum(duplicates) AS duplicates, sum(rejected) AS rejected,
              (SELECT count() FROM (SELECT seq FROM ${db}.winnow_slices WHERE pipeline = {p:String} AND status = 'committed' GROUP BY seq HAVING count() > 1)) AS twice
       FROM ${db}.winnow_slices WHERE pipeline = {p:String} AND status = 'committed'`,
      { p: p.name },
    );
    expect(Object.fromEntries(Object.entries(sums ?? {}).map(([k, v]) => [k, Number(v)]))).toEqual({
      rows_in: 1000,
      inserted: expected.length,
      duplicates: 1000 - expected.length - bad.size,
      rejected: bad.size,
      twice: 0,
    });
    // The checker counts refused messages as dead letters, not as missing rows.
    const report = await new Checker(client, p).run({ repair: false, full: true });
    expect(report.completeness).toMatchObject({ ok: true, missing: 0 });
    expect(report.ok, JSON.stringify(report)).toBe(true);
  });

  it('replays the refused messages once the cause is fixed, adding only keys not represented', async () => {
    await client.command(`ALTER TABLE ${db}.events DROP CONSTRAINT no_bad`);
    const before = (await client.rows<{ msg: string }>(`SELECT msg FROM ${db}.events`)).map((r) => Number(r.msg));
    const out = await replayDeadLetters(client, p, 'all', new Replayer(client, p, undefined));
    expect(out.reingested).toBe(5);
    const after = (await client.rows<{ msg: string }>(`SELECT msg FROM ${db}.events`)).map((r) => Number(r.msg));
    // 30 and 31 are represented by their later twins (730, 731); 377, 640 and 699 had no other occurrence.
    expect(after.filter((m) => !before.includes(m)).sort((a, b) => a - b)).toEqual([377, 640, 699]);
    const [left] = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.${n.errors}`);
    expect(Number(left?.n)).toBe(0);
  });

  it('stops dead-lettering when the table refuses every row, and goes on once it is fixed', async () => {
    await client.command(`ALTER TABLE ${db}.events ADD CONSTRAINT refuse_all CHECK payload = ''`);
    const [top] = await client.rows<{ o: string }>(
      `SELECT max(_offset) + 1 AS o FROM ${db}.${n.staging} WHERE _partition = 0`,
    );
    const from = Number(top?.o);
    await client.command(
      `INSERT INTO ${db}.${n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       SELECT toUUID(concat('00000000-0000-4000-9000-', leftPad(toString(number), 12, '0'))), 5000 + number, 'later', now64(3), 'a', 0, ${from} + number, NULL, now64(3)
       FROM numbers(50)`,
    );
    const lettersBefore = Number(
      (await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.${n.errors}`))[0]?.n,
    );
    const proc = new Processor(client, p);
    let failure: unknown;
    for (let i = 0; i < 200 && !failure; i++) {
      await proc.runOneSlice().catch((err: unknown) => (failure = err));
    }
    expect(String((failure as Error | undefined)?.message)).toMatch(
      new RegExp(`refused the last ${TABLE_WIDE_REFUSALS} messages one by one and accepted none: it refuses every row`),
    );
    const letters = Number((await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.${n.errors}`))[0]?.n);
    expect(letters - lettersBefore).toBe(TABLE_WIDE_REFUSALS);
    // Still refused: still no further dead letter.
    await expect(proc.runOneSlice()).rejects.toThrow(/refuses every row/);

    await client.command(`ALTER TABLE ${db}.events DROP CONSTRAINT refuse_all`);
    while (await proc.runOneSlice()) {
      /* drain */
    }
    await replayDeadLetters(client, p, 'all', new Replayer(client, p, undefined));
    const [later] = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.events WHERE payload = 'later'`);
    expect(Number(later?.n)).toBe(50);
  });

  it('isolates a refused message in one partition while the others keep receiving', async () => {
    // Partitions 10-13 of topic 'a'; the refused message is early in the last one, and the other
    // three get new rows after every tick, as a live stream does.
    await client.command(`ALTER TABLE ${db}.events ADD CONSTRAINT no_bad_live CHECK payload NOT LIKE 'worse%'`);
    let next = 0;
    const stage = async (partition: number, n: number, payload = 'fine'): Promise<void> => {
      const rows = Array.from({ length: n }, (_x, i) => {
        const m = 20_000 + next++;
        return `('${uuid(m)}', ${m}, '${payload} ${m}', now64(3), 'a', ${partition}, ${offsets.get(partition)! + i}, NULL, now64(3))`;
      });
      offsets.set(partition, offsets.get(partition)! + n);
      await client.command(
        `INSERT INTO ${db}.${n_.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at) VALUES ${rows.join(',')}`,
      );
    };
    const n_ = n;
    const offsets = new Map([10, 11, 12, 13].map((x) => [x, 0]));
    for (const part of [10, 11, 12]) await stage(part, 100);
    await stage(13, 5);
    await stage(13, 1, 'worse');
    await stage(13, 100);
    const proc = new Processor(client, p);
    let ticks = 0;
    let refused = false;
    while (!refused) {
      const out = await proc.runOneSlice();
      refused ||= out?.refused !== undefined;
      for (const part of [10, 11, 12]) await stage(part, 20);
      expect(++ticks, 'ticks to isolate the refused message').toBeLessThanOrEqual(40);
    }
    while (await proc.runOneSlice()) {
      /* drain */
    }
    const [row] = await client.rows<{ n: string }>(
      `SELECT count() AS n FROM ${db}.${n.errors} WHERE _partition = 13 AND _offset = 5`,
    );
    expect(Number(row?.n)).toBe(1);
    const [fin] = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.events WHERE msg >= 20000`);
    expect(Number(fin?.n)).toBe(next - 1);
  });
});
