/**
 * Seen keys leave after the window: with a 2 s window (seen keys live twice
 * that after their write), slices keep a steady 100 new keys about once a
 * second. Each round's event times are an hour after the last, as a backlog
 * replayed from days ago would be: one hour-wide partition a round, and expiry
 * follows the write time. Once all of a part's keys have expired, TTL drops the
 * part (no checker involved: the check's retention step only drops partitions
 * TTL merges left behind). After two windows the count of seen keys stops
 * growing, at about twice the window x the rate, while without expiry it would
 * grow by 100 a round; the final table keeps every row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectNames } from '../../src/provisioning/objects.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { handFedPipeline, stageRows, type HandFed } from '../support/hand-fed.ts';

const HOUR_MS = 3_600_000;
const BASE = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 72 * HOUR_MS;
const PER_ROUND = 100;
const ROUNDS = 14;
const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('seen keys expire after the window', () => {
  let h: HandFed;

  beforeAll(async () => {
    h = await handFedPipeline('expiry', ['a'], '2s');
  });

  afterAll(async () => {
    await h?.client.close();
  });

  it('holds a flat number of seen keys after two windows', { timeout: 120_000 }, async () => {
    const { client, db, p } = h;
    const n = objectNames(p);
    const proc = new Processor(client, p);
    const counts: number[] = [];
    let finalRows = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const started = Date.now();
      await stageRows(
        h,
        Array.from({ length: PER_ROUND }, (_, i) => ({
          key: uuid(round * PER_ROUND + i),
          msg: round * PER_ROUND + i,
          t: BASE + round * HOUR_MS + i,
          topic: 'a',
          partition: 0,
          offset: round * PER_ROUND + i,
        })),
      );
      const out = await proc.runOneSlice();
      expect(out?.slice.inserted).toBe(PER_ROUND);
      finalRows += PER_ROUND;
      const c = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.${n.seen}`);
      counts.push(Number(c[0]!.n));
      await sleep(Math.max(0, 1000 - (Date.now() - started)));
    }
    // Expiry takes nothing from the final table.
    const f = await client.rows<{ n: string }>(`SELECT count() AS n FROM ${db}.events`);
    expect(Number(f[0]!.n)).toBe(finalRows);
    // Without expiry the last count would be ROUNDS x PER_ROUND; with it, the last rounds hold
    // what was written within about 2W (+ the write time's 1 s resolution and the merge's delay).
    const tail = counts.slice(-5);
    expect(Math.max(...tail), counts.join(',')).toBeLessThanOrEqual(7 * PER_ROUND);
    expect(Math.min(...tail), counts.join(',')).toBeGreaterThanOrEqual(PER_ROUND);
    expect(Math.max(...tail) - Math.min(...tail), counts.join(',')).toBeLessThanOrEqual(3 * PER_ROUND);
  });
});
