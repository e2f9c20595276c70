/**
 * The daemon's check repairs a slice written twice (issue 9): the same kept
 * rows go through the pipeline's dedup entry point a second time with the same
 * slice id, as a doubled insert would write them. Afterwards, counted exactly:
 * the final table holds each key once with its row, the seen keys hold no
 * (key, __t, __slice) twice, the counts reconcile and the next check is clean.
 * A repair killed after its delete step, and one killed after its save with
 * every copy gone, are both finished by the next check with nothing lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineConfig } from '../../src/config/index.ts';
import type { Db } from '../../src/clickhouse/client.ts';
import { createLogger } from '../../src/log.ts';
import { Checker } from '../../src/operations/checker.ts';
import { PipelineRunner } from '../../src/daemon/runner.ts';
import type { ObjectNames } from '../../src/provisioning/objects.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { handFedPipeline, stageRows, type HandFed } from '../support/hand-fed.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const BASE = Date.now() - 600_000;

describe('repair of a slice written twice', () => {
  let h: HandFed;
  let db: string;
  let p: PipelineConfig;
  let n: ObjectNames;
  let client: Db;
  let runner: PipelineRunner;
  const logged: { msg: string; [k: string]: unknown }[] = [];
  let staged = 0;

  /** Stages messages from..to-1; message i has key i % 80 below 100 (so 80-99 repeat 0-19 within the window), else key i - 20. */
  const stage = async (from: number, to: number): Promise<void> => {
    const rows = [];
    for (let i = from; i < to; i++)
      rows.push({
        key: uuid(i < 100 ? i % 80 : i - 20),
        msg: i,
        t: BASE + i * 100,
        topic: 'a',
        partition: 0,
        offset: i,
      });
    await stageRows(h, rows);
    staged = to;
  };
  const drain = async (): Promise<void> => {
    const proc = new Processor(client, p);
    while (await proc.runOneSlice()) {
      /* drain */
    }
  };
  const lastSlice = async (): Promise<string> =>
    (
      await client.rows<{ id: string }>(
        `SELECT slice_id AS id FROM ${db}.winnow_slices WHERE pipeline = {p:String} AND status = 'committed' ORDER BY seq DESC LIMIT 1`,
        { p: p.name },
      )
    )[0]!.id;
  /** The slice's kept rows once more through the dedup entry point, as a doubled insert writes them. */
  const double = async (slice: string): Promise<number> => {
    const before = await num(`SELECT count() AS n FROM ${db}.events`);
    await client.command(
      `INSERT INTO ${db}.${n.kept} (event_id, msg, payload, __t, __slice)
       SELECT f.event_id, f.msg, f.payload, s.__t, s.__slice FROM ${db}.${n.seen} AS s INNER JOIN ${db}.events AS f USING (event_id)
       WHERE s.__slice = {slice:String}`,
      { slice },
      { insert_deduplicate: 0, deduplicate_blocks_in_dependent_materialized_views: 0 },
    );
    return (await num(`SELECT count() AS n FROM ${db}.events`)) - before;
  };
  const num = async (sql: string): Promise<number> => Number((await client.rows<{ n: string }>(sql))[0]?.n ?? 0);
  /** Every key's row, once: message i's row for the first message of each key. */
  const expectExact = async (): Promise<void> => {
    const keys = staged <= 100 ? Math.min(staged, 80) : staged - 20;
    expect(await num(`SELECT count() AS n FROM ${db}.events`)).toBe(keys);
    expect(await num(`SELECT uniqExact(event_id, msg, payload) AS n FROM ${db}.events`)).toBe(keys);
    expect(
      await num(
        `SELECT count() AS n FROM (SELECT event_id, __t, __slice FROM ${db}.${n.seen} GROUP BY ALL HAVING count() > 1)`,
      ),
    ).toBe(0);
    const inserted = await num(
      `SELECT sum(inserted) AS n FROM ${db}.winnow_slices WHERE pipeline = '${p.name}' AND status = 'committed'`,
    );
    expect(inserted).toBe(keys);
  };
  const steps = async (repairId: string): Promise<string[]> =>
    (
      await client.rows<{ s: string }>(
        `SELECT toString(step) AS s FROM ${db}.winnow_repairs WHERE repair_id = {r:String} ORDER BY step, attempt`,
        { r: repairId },
      )
    ).map((x) => x.s);

  beforeAll(async () => {
    h = await handFedPipeline('repair', ['a'], '1h', { maxSliceRows: 40 });
    ({ db, p, n, client } = h);
    runner = new PipelineRunner(
      p,
      client,
      createLogger({ write: (l) => logged.push(JSON.parse(l) as { msg: string }) }),
    );
    await stage(0, 60);
    await drain();
    const first = await runner.check();
    expect(first).toMatchObject({ ok: true, scope: { mode: 'full' } });
  });

  afterAll(async () => {
    await runner?.stop();
    await client?.close();
  });

  it('removes the extra copies from the final table and the seen keys, records it, logs it once', async () => {
    await stage(60, 100);
    await drain();
    const doubled = await double(await lastSlice());
    expect(doubled).toBe(20); // keys 60-79; messages 80-99 repeat keys 0-19 within the window
    expect(await num(`SELECT count() AS n FROM ${db}.events`)).toBe(100);
    const r = (await runner.check())!;
    expect(r.scope).toMatchObject({ mode: 'incremental', slices: 1 });
    expect(r.doubled).toMatchObject({
      ok: true,
      groups: 20,
      keys: 20,
      extraSeenCopies: 20,
      finalRemoved: 20,
      seenRemoved: 20,
    });
    expect(r.doubled.repairs).toHaveLength(1);
    expect(r.doubled.repairs[0]).toMatchObject({
      keys: 20,
      finalRemoved: 20,
      seenRemoved: 20,
      restored: 0,
      resumed: false,
    });
    expect(r).toMatchObject({ ok: true, uniqueness: { violations: 0 }, counts: { ok: true, finalRows: 80 } });
    await expectExact();
    expect(await steps(r.doubled.repairs[0]!.repairId)).toEqual(['saved', 'deleting', 'done']);
    // The API serves the stored report.
    expect((await Checker.latest(client, p))?.doubled.repairs[0]?.repairId).toBe(r.doubled.repairs[0]!.repairId);
    const again = (await runner.check())!;
    expect(again).toMatchObject({ ok: true, doubled: { groups: 0, repairs: [] } });
    const full = await new Checker(client, p).run({ repair: false, full: true });
    expect(full).toMatchObject({
      ok: true,
      scope: { mode: 'full' },
      doubled: { groups: 0 },
      counts: { ok: true, finalRows: 80 },
    });
    expect(logged.filter((l) => l.msg === 'repaired a slice written twice')).toHaveLength(1);
  });

  it('finishes a repair killed after its delete step, nothing lost', async () => {
    await stage(100, 140);
    await drain();
    expect(await double(await lastSlice())).toBe(40);
    let repairId = '';
    const killed = new Checker(client, p, undefined, {
      afterDelete: (id) => {
        repairId = id;
        throw new Error('killed after the delete');
      },
    });
    await expect(killed.run({ repair: true })).rejects.toThrow('killed after the delete');
    expect(await steps(repairId)).toEqual(['saved', 'deleting']);
    // Deleted by position: one copy of each row is still there.
    expect(await num(`SELECT uniqExact(event_id, msg, payload) AS n FROM ${db}.events`)).toBe(120);
    const r = (await runner.check())!;
    expect(r.doubled.repairs).toEqual([
      expect.objectContaining({ repairId, resumed: true, finalRemoved: 40, seenRemoved: 40, restored: 0 }),
    ]);
    expect(r.ok).toBe(true);
    expect(await steps(repairId)).toEqual(['saved', 'deleting', 'done']);
    await expectExact();
  });

  it('re-inserts from the write-ahead copy when a crash left no copy of a row', async () => {
    await stage(140, 160);
    await drain();
    expect(await double(await lastSlice())).toBe(20);
    let repairId = '';
    const killed = new Checker(client, p, undefined, {
      afterSave: async (id) => {
        repairId = id;
        // The worst a dead repair could leave: every copy of the doubled rows gone.
        await client.command(
          `DELETE FROM ${db}.events WHERE event_id IN (SELECT event_id FROM ${db}.${n.repairFinal} WHERE __repair = {r:String})`,
          { r: id },
          { mutations_sync: '2' },
        );
        throw new Error('killed after the save');
      },
    });
    await expect(killed.run({ repair: true })).rejects.toThrow('killed after the save');
    expect(await num(`SELECT count() AS n FROM ${db}.events`)).toBe(120);
    const r = (await runner.check())!;
    expect(r.doubled.repairs).toEqual([expect.objectContaining({ repairId, resumed: true, restored: 20 })]);
    expect(r.ok).toBe(true);
    await expectExact();
  });
});
