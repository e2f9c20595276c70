/**
 * The per-slice kept count (`winnow:slice_count_kept`) with a long window:
 * the seen keys hold days of kept keys in day-wide partitions, but the rows a
 * slice kept carry the times of its staged rows, so the count reads only the
 * partitions of the slice's own times (partition pruning on `__t`), and it
 * still counts exactly what the slice kept, also after a re-run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectNames } from '../../src/provisioning/objects.ts';
import { countKept, dedupInsert, keptCountSql, type SliceRange } from '../../src/slicing/slice.ts';
import { handFedPipeline, stageRows, type HandFed } from '../support/hand-fed.ts';

const DAY_MS = 86_400_000;
const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

describe('kept count of a slice with a 7-day window', () => {
  let h: HandFed;

  beforeAll(async () => {
    h = await handFedPipeline('keptcount', ['a'], '7d');
  });

  afterAll(async () => {
    await h?.client.close();
  });

  it('reads only the partitions of the slice times and counts what the slice kept', async () => {
    const { client, db, p } = h;
    const n = objectNames(p);
    // Kept keys of earlier days: 3 days and 5 days ago, one partition each (day-wide buckets).
    for (const daysAgo of [3, 5]) {
      await client.command(
        `INSERT INTO ${db}.${n.seen} (event_id, __t, __slice)
         SELECT generateUUIDv4(number), now64(3) - toIntervalMillisecond(${daysAgo * DAY_MS}), 'earlier' FROM numbers(1000)`,
      );
    }
    const now = Date.now();
    // 20 messages: 15 new keys, 4 of them twice, and a key kept 3 days ago (inside the window).
    const old = await client.rows<{ k: string }>(`SELECT toString(event_id) AS k FROM ${db}.${n.seen} LIMIT 1`);
    const rows = Array.from({ length: 20 }, (_, i) => ({
      key: i === 19 ? old[0]!.k : uuid(i % 15),
      msg: i,
      t: now - 60_000 + i,
      topic: 'a',
      partition: 0,
      offset: i,
    }));
    await stageRows(h, rows);
    const ranges: SliceRange[] = [{ topic: 'a', partition: 0, fromOffset: 0, toOffset: 19 }];
    const sliceId = `${p.name}-kc-1`;
    await dedupInsert(client, p, sliceId, ranges);
    // The 15 new keys kept; the 4 repeats and the key kept 3 days ago dropped.
    const expected = 15;
    expect(Number((await client.rows<{ c: string }>(`SELECT count() AS c FROM ${db}.events`))[0]!.c)).toBe(expected);
    expect(await countKept(client, p, sliceId, ranges)).toBe(expected);
    // A re-run writes nothing (token) and the count stays.
    await dedupInsert(client, p, sliceId, ranges);
    expect(await countKept(client, p, sliceId, ranges)).toBe(expected);

    // The count's plan: of the seen keys' 3 partitions, only today's is read.
    const q = keptCountSql(p, sliceId, ranges);
    const plan = await client.rows<{ explain: string }>(`EXPLAIN indexes = 1 ${q.sql}`, q.params);
    const text = plan.map((r) => r.explain).join('\n');
    const seenPart = text.slice(text.indexOf(n.seen));
    // The first index step sees every part of the table; the read takes what the steps leave.
    const first = /Parts: (\d+)\/(\d+)/.exec(seenPart);
    const read = /Parts: (\d+) \|/.exec(seenPart);
    expect(first, text).not.toBeNull();
    expect(read, text).not.toBeNull();
    expect(Number(first![2])).toBeGreaterThanOrEqual(3);
    expect(Number(read![1])).toBe(1);
  });
});
