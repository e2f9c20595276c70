import { describe, expect, it } from 'vitest';
import { planSlice, sliceId } from '../../src/slicing/plan.ts';
import { cronFor } from '../../src/daemon/schedule.ts';

describe('planSlice', () => {
  it('returns nothing when no partition has new offsets', () => {
    expect(
      planSlice([{ topic: 't', partition: 0, offset: 10 }], [{ topic: 't', partition: 0, low: 5, high: 9 }], 100),
    ).toBeUndefined();
    expect(planSlice([], [], 100)).toBeUndefined();
  });

  it('covers each partition from its next offset to its head and advances the watermark', () => {
    const plan = planSlice(
      [{ topic: 't', partition: 0, offset: 10 }],
      [
        { topic: 't', partition: 0, low: 10, high: 19 },
        { topic: 't', partition: 1, low: 0, high: 4 },
      ],
      1000,
    );
    expect(plan?.ranges).toEqual([
      { topic: 't', partition: 0, fromOffset: 10, toOffset: 19 },
      { topic: 't', partition: 1, fromOffset: 0, toOffset: 4 },
    ]);
    expect(plan?.nextOffsets).toEqual([
      { topic: 't', partition: 0, offset: 20 },
      { topic: 't', partition: 1, offset: 5 },
    ]);
  });

  it('caps the slice, sharing the budget between active partitions, and keeps idle watermarks', () => {
    const plan = planSlice(
      [
        { topic: 'a', partition: 0, offset: 0 },
        { topic: 'b', partition: 0, offset: 7 },
      ],
      [
        { topic: 'a', partition: 0, low: 0, high: 999 },
        { topic: 'a', partition: 1, low: 0, high: 999 },
      ],
      100,
    );
    expect(plan?.ranges.map((r) => r.toOffset - r.fromOffset + 1)).toEqual([50, 50]);
    expect(plan?.nextOffsets).toContainEqual({ topic: 'b', partition: 0, offset: 7 });
  });

  it('skips empty offset space below the lowest staged offset when capping', () => {
    const plan = planSlice([], [{ topic: 't', partition: 0, low: 1_000_000, high: 1_000_009 }], 5);
    expect(plan?.ranges[0]).toEqual({ topic: 't', partition: 0, fromOffset: 0, toOffset: 1_000_004 });
  });
});

describe('sliceId', () => {
  it('is stable for the same ranges and differs for different ones', () => {
    const r = [{ topic: 't', partition: 0, fromOffset: 0, toOffset: 9 }];
    expect(sliceId('p', 1, r)).toBe(sliceId('p', 1, r));
    expect(sliceId('p', 1, r)).not.toBe(sliceId('p', 1, [{ ...r[0]!, toOffset: 10 }]));
    expect(sliceId('p', 1, r)).not.toBe(sliceId('p', 2, r));
    expect(sliceId('p', 1, r)).toMatch(/^p-1-[0-9a-f]{12}$/);
  });
});

describe('cronFor', () => {
  it('maps intervals onto even cron steps', () => {
    expect(cronFor(1000)).toEqual({ expression: '* * * * * *', effectiveMs: 1000 });
    expect(cronFor(100)).toEqual({ expression: '* * * * * *', effectiveMs: 1000 });
    expect(cronFor(5000)).toEqual({ expression: '*/5 * * * * *', effectiveMs: 5000 });
    expect(cronFor(7000).effectiveMs).toBe(6000);
    expect(cronFor(60_000)).toEqual({ expression: '0 * * * * *', effectiveMs: 60_000 });
    expect(cronFor(15 * 60_000)).toEqual({ expression: '0 */15 * * * *', effectiveMs: 900_000 });
    expect(cronFor(3_600_000)).toEqual({ expression: '0 0 * * * *', effectiveMs: 3_600_000 });
  });
});
