import { describe, expect, it } from 'vitest';
import { mergeRanges } from '../../src/operations/check-scope.ts';

describe('incremental check scope', () => {
  it('merges the ranges of consecutive slices and overlapping replays per partition', () => {
    const r = (topic: string, partition: number, fromOffset: number, toOffset: number) => ({
      topic,
      partition,
      fromOffset,
      toOffset,
    });
    expect(
      mergeRanges([
        r('a', 0, 10, 19),
        r('a', 1, 0, 4),
        r('a', 0, 0, 9),
        r('a', 0, 25, 30),
        r('a', 0, 5, 12),
        r('b', 0, 0, 1),
      ]),
    ).toEqual([r('a', 0, 0, 19), r('a', 0, 25, 30), r('a', 1, 0, 4), r('b', 0, 0, 1)]);
    expect(mergeRanges([])).toEqual([]);
  });
});
