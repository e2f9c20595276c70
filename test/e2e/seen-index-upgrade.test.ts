/**
 * Migration 0015 on a running dedup.index rocksdb pipeline built to 0014: between its
 * two statements a slice may run with the old code (its kept rows name no
 * `__kv_write`) or the new code. At every point no insert may leave its keys
 * without their index entries, and no entry may move back in time:
 * - at 0014, the old view (its join) writes the old code's entries;
 * - after the column (statement 1): an old insert fails whole (the column's DEFAULT
 *   throws before any row reaches a view: no final row, seen key or entry), and the
 *   new code's slice is written by the old view, correctly;
 * - after the view's new query (statement 2): the new code's slice writes its entries
 *   from the marked rows alone, forward only (a key staged once whose entry is later,
 *   a contested key whose entry is later than all its kept rows), a re-run writes the
 *   same entries, and an old insert still fails whole.
 * Then `migrate up` records 0015 (its statements are idempotent) and drift finds the
 * index's objects as the live builders build them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspect } from '../../src/provisioning/drift.ts';
import { migration as m0015 } from '../../src/provisioning/migrations/0015_seen_kv_carried_entry.ts';
import type { MigrationStatement } from '../../src/provisioning/migrations/types.ts';
import { dedupInsert } from '../../src/slicing/slice.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { handFedPipeline, stageRows, type HandFed, type StagedRow } from '../support/hand-fed.ts';

const H = 3_600_000;
const BASE = Math.floor(Date.now() / H) * H - 12 * H;
const key = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

describe('0015 on a dedup.index rocksdb pipeline built to 0014', () => {
  let h: HandFed;
  let offset = 0;
  let msg = 0;
  const stage = async (rows: [k: number, t: number][]): Promise<void> => {
    const staged: StagedRow[] = rows.map(([k, t]) => ({
      key: key(k),
      msg: ++msg,
      t: BASE + t,
      topic: 'a',
      partition: 0,
      offset: offset++,
    }));
    await stageRows(h, staged);
  };
  /** What a slice insert older than 0015 sends the kept table: no `__kv_write`. */
  const oldInsert = (k: number, t: number, slice: string): Promise<unknown> =>
    h.client.command(
      `INSERT INTO ${h.db}.${h.n.kept} (event_id, msg, payload, __t, __slice)
       VALUES ('${key(k)}', ${++msg}, 'old', fromUnixTimestamp64Milli(toInt64(${BASE + t}), 'UTC'), '${slice}')`,
    );
  /** Per key of `keys`, its entry's time relative to BASE (undefined: none). */
  const entries = async (keys: number[]): Promise<Record<number, number | undefined>> => {
    const rows = await h.client.rows<{ k: string; t: string }>(
      `SELECT toString(m.k) AS k, toUnixTimestamp64Milli(e.__t) AS t FROM ${h.db}.${h.n.seenKv} AS e
       INNER JOIN (SELECT toUUID(arrayJoin([${keys.map((k) => `'${key(k)}'`).join(', ')}])) AS k,
         reinterpretAsUInt128(sipHash128(k)) AS h) AS m ON e.h = m.h`,
    );
    const byKey = new Map(rows.map((r) => [r.k, Number(r.t) - BASE]));
    return Object.fromEntries(keys.map((k) => [k, byKey.get(key(k))]));
  };
  /** The old code's final rows, and the seen keys of `slice`. */
  const landed = async (slice: string): Promise<number[]> =>
    (
      await h.client.rows<{ f: string; s: string }>(
        `SELECT (SELECT count() FROM ${h.db}.events WHERE payload = 'old') AS f,
           (SELECT count() FROM ${h.db}.${h.n.seen} WHERE __slice = '${slice}') AS s`,
      )
    ).flatMap((r) => [Number(r.f), Number(r.s)]);
  const refused = /older than migration 0015/;

  beforeAll(async () => {
    h = await handFedPipeline('kvup', ['a'], '1h', { maxSliceRows: 1000 }, '0014_seen_kv_view', 'rocksdb');
  });
  afterAll(async () => {
    await h?.client.close();
  });

  it('never leaves a slice without its entries nor moves an entry back', async () => {
    // At 0014 the old code keeps keys 1-5 at 5h: the old view writes their entries.
    for (const k of [1, 2, 3, 4, 5]) await oldInsert(k, 5 * H, 'old-1');
    expect(await entries([1, 2, 3, 4, 5])).toEqual({ 1: 5 * H, 2: 5 * H, 3: 5 * H, 4: 5 * H, 5: 5 * H });
    const oldFinal = await landed('old-1');

    const statements: MigrationStatement[] = [];
    await m0015.up({
      db: h.client,
      pipeline: h.p,
      kafkaPassword: undefined,
      finalExists: true,
      dropFinal: false,
      run: (s) => {
        statements.push(...s);
        return Promise.resolve();
      },
    });
    expect(statements).toHaveLength(2);
    const [column, query] = statements;

    // Statement 1: the column. The old code's insert now fails whole; the new code's
    // slice is written by the 0014 view.
    await h.client.command(column!.sql);
    await expect(oldInsert(9, 6 * H, 'old-2')).rejects.toThrow(refused);
    expect(await landed('old-2')).toEqual([oldFinal[0], 0]);
    expect((await entries([9]))[9]).toBeUndefined();
    const processor = new Processor(h.client, h.p);
    // 1 a window after its entry (kept, entry moves on); 2 within it (a duplicate);
    // 3 a window before it (kept, the entry stays); 6 twice, two windows apart (both kept;
    // the later one staged first, so it does not reach the index last by the insert's order).
    await stage([
      [1, 7 * H],
      [2, 5 * H + H / 2],
      [3, 2 * H],
      [6, 8 * H],
      [6, 6 * H],
    ]);
    const first = await processor.runOneSlice();
    expect(first?.slice.inserted).toBe(4);
    expect(await entries([1, 2, 3, 6])).toEqual({ 1: 7 * H, 2: 5 * H, 3: 5 * H, 6: 8 * H });

    // Statement 2: the view writes the marked rows, no join.
    await h.client.command(query!.sql);
    const [view] = await h.client.rows<{ q: string }>(
      `SELECT as_select AS q FROM system.tables WHERE database = {d:String} AND name = {n:String}`,
      { d: h.db, n: h.n.keptToSeenKvMv },
    );
    expect(view?.q).toContain('__kv_write');
    expect(view?.q).not.toContain('JOIN');
    await expect(oldInsert(9, 6 * H, 'old-3')).rejects.toThrow(refused);
    expect(await landed('old-3')).toEqual([oldFinal[0], 0]);
    // 5 staged once, its entry (5h) later than the row and beyond the slice's seen-key
    // lookup: kept, entry unchanged. 4 twice, both kept, both before its entry: unchanged.
    // 7 new. 8 new, twice, two windows apart, the later staged first: its latest.
    await stage([
      [5, H / 6],
      [4, H / 3],
      [4, 2 * H + H / 3],
      [7, H],
      [8, 2 * H + H / 2],
      [8, H / 4],
    ]);
    const second = await processor.runOneSlice();
    expect(second?.slice.inserted).toBe(6);
    const after = { 1: 7 * H, 2: 5 * H, 3: 5 * H, 4: 5 * H, 5: 5 * H, 6: 8 * H, 7: H, 8: 2 * H + H / 2 };
    expect(await entries([1, 2, 3, 4, 5, 6, 7, 8])).toEqual(after);

    // A re-run of the second slice (its token skips the rows) writes the same entries.
    const finalRows = async (): Promise<number> =>
      Number((await h.client.rows<{ n: string }>(`SELECT count() AS n FROM ${h.db}.events`))[0]?.n);
    const before = await finalRows();
    await dedupInsert(h.client, h.p, second!.slice.sliceId, second!.slice.ranges);
    expect(await finalRows()).toBe(before);
    expect(await entries([1, 2, 3, 4, 5, 6, 7, 8])).toEqual(after);
    const [count] = await h.client.rows<{ n: string }>(`SELECT count() AS n FROM ${h.db}.${h.n.seenKv}`);
    expect(Number(count?.n)).toBe(8);

    // migrate up records 0015, whose statements are idempotent; the index's objects are as
    // the live builders build them (the queue, dropped by the test, is left alone).
    const up = await h.migrator.migrate({
      dryRun: false,
      kafkaPassword: undefined,
      print: () => undefined,
      inPlace: false,
    });
    expect(up.migrations).toEqual(['0015_seen_kv_carried_entry']);
    const objects = await inspect(h.client, h.p, undefined);
    const states = objects.filter((o) => ['kept', 'seenKv', 'keptToSeenKvMv'].includes(o.role));
    expect(states.map((o) => [o.role, o.state, o.differences])).toEqual([
      ['seenKv', 'unchanged', []],
      ['kept', 'unchanged', []],
      ['keptToSeenKvMv', 'unchanged', []],
    ]);
    await expect(oldInsert(9, 6 * H, 'old-4')).rejects.toThrow(refused);
  });
});
