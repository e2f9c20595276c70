/**
 * The per-minute history the web page charts (src/operations/history.ts), on
 * a hand-fed pipeline: arrivals by ingestion minute (staging, plus dead
 * letters that never reached staging), what the committed slices counted by
 * commit minute, and the rows waiting at the end of each minute, derived back
 * from the rows waiting now.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineHistory } from '../../src/operations/history.ts';
import { pendingRows } from '../../src/operations/stats.ts';
import { Processor } from '../../src/slicing/processor.ts';
import { REFUSED_BY_FINAL } from '../../src/slicing/rejections.ts';
import { handFedPipeline, type HandFed } from '../support/hand-fed.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('per-minute history', () => {
  let h: HandFed;

  beforeAll(async () => {
    h = await handFedPipeline('hist', ['a'], '1h', { maxSliceRows: 40 });
  });

  afterAll(async () => {
    await h?.client.close();
  });

  /** `count` messages from `offset` on, ingested `minutesAgo` minutes ago; every fifth repeats a key. */
  const stage = (offset: number, count: number, minutesAgo: number) => {
    const values = Array.from({ length: count }, (_, i) => {
      const o = offset + i;
      const key = uuid(o % 5 === 4 ? o - 1 : o);
      return `('${key}', ${o}, 'p', now64(3), 'a', 0, ${o}, NULL, now64(3) - INTERVAL ${minutesAgo} MINUTE)`;
    });
    return h.client.command(
      `INSERT INTO ${h.db}.${h.n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at) VALUES ${values.join(',')}`,
    );
  };
  const deadLetter = (offset: number, minutesAgo: number, error: string) =>
    h.client.command(
      `INSERT INTO ${h.db}.${h.n.errors} (_raw, __error, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       VALUES ('x', '${error}', 'a', 0, ${offset}, NULL, now64(3) - INTERVAL ${minutesAgo} MINUTE)`,
    );

  it('buckets arrivals and slices per minute and derives the rows waiting at the end of each', async () => {
    await stage(0, 100, 3); // three minutes ago
    await deadLetter(100, 2, 'malformed JSON'); // two minutes ago, never staged
    await deadLetter(7, 0, `${REFUSED_BY_FINAL}CHECK failed`); // staged already: not an arrival
    await stage(101, 50, 0);
    const proc = new Processor(h.client, h.p);
    await proc.runOneSlice();
    await proc.runOneSlice(); // two slices of 40 rows: 80 processed, 70 waiting

    const waitingNow = await pendingRows(h.client, h.p);
    expect(waitingNow).toBe(70);
    const history = await pipelineHistory(h.client, h.p, 10, waitingNow);
    const b = history.buckets;
    expect(b).toHaveLength(10);
    expect(b.map((x) => x.minute - b[0]!.minute)).toEqual(Array.from({ length: 10 }, (_, i) => i * 60_000));
    expect(b.at(-1)!.minute).toBeLessThanOrEqual(Date.now());
    expect(b.at(-1)!.minute).toBeGreaterThan(Date.now() - 120_000);

    expect(sum(b.map((x) => x.arrived))).toBe(151);
    expect(sum(b.map((x) => x.processed))).toBe(80);
    expect(sum(b.map((x) => x.slices))).toBe(2);
    expect(sum(b.map((x) => x.inserted + x.duplicates))).toBe(80);
    expect(sum(b.map((x) => x.duplicates))).toBe(16); // offsets 4, 9, ..., 79 repeat the key before them
    expect(sum(b.map((x) => x.deadLetters))).toBe(1);
    expect(b.at(-1)!.waiting).toBe(70);

    const early = b.findIndex((x) => x.arrived === 100);
    expect(early).toBeGreaterThan(0);
    expect(b[early - 1]!.waiting).toBe(0); // before the first arrivals nothing waited
    expect(b[early]!.waiting).toBe(100); // all of them waited until the slices ran, minutes later
    expect(b[early + 1]!.waiting).toBe(100);
    expect(b[early + 1]!.arrived).toBe(1); // the dead letter
    expect(b.slice(0, early).every((x) => x.arrived === 0 && x.waiting === 0)).toBe(true);
  });
});
