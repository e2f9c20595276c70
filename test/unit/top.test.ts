import { describe, expect, it } from 'vitest';
import type { PipelineStats } from '../../src/operations/stats.ts';
import { formatAge, renderFrame, topRow, type TopSample } from '../../src/operations/top.ts';

const stats = (over: Partial<PipelineStats>): PipelineStats => ({
  name: 'users',
  messagesConsumed: 0,
  staged: 0,
  inserted: 0,
  duplicatesDropped: 0,
  duplicateRatio: 0,
  deadLetters: 0,
  refusedByFinal: 0,
  pendingRows: 0,
  partitions: [],
  lastSlice: null,
  eventsPerSecond: { last1m: 0, last5m: 0 },
  lastError: null,
  ...over,
});
const sample = (at: number, s: Partial<PipelineStats>): TopSample => ({
  at,
  stats: stats(s),
  health: { state: 'processing', detail: null },
  kafkaError: null,
});

describe('winnow top: rows and frames', () => {
  it('rates are the counters’ deltas over the time between samples; none on the first sample', () => {
    const a = sample(10_000, { messagesConsumed: 100, inserted: 80, duplicatesDropped: 20 });
    const b = sample(12_000, { messagesConsumed: 1100, inserted: 880, duplicatesDropped: 220, duplicateRatio: 0.2 });
    expect(topRow(undefined, a)).toMatchObject({ inPerSec: null, insertedPerSec: null, duplicatesPerSec: null });
    expect(topRow(a, b)).toMatchObject({
      inPerSec: 500,
      insertedPerSec: 400,
      duplicatesPerSec: 100,
      duplicateRatio: 0.2,
    });
  });

  it('lag sums the partitions, unknown when one is unknown; the last slice’s age is from its commit time', () => {
    const part = (partition: number, lag: number | null) => ({
      topic: 't',
      partition,
      nextOffset: 0,
      stagedHigh: null,
      logEnd: null,
      consumerOffset: null,
      lag,
      lagSeconds: null,
    });
    const lastSlice = {
      sliceId: 's',
      seq: 3,
      committedAt: '2026-01-01 00:00:00.000',
      durationMs: 42.4,
      rowsIn: 900,
      inserted: 700,
      duplicates: 200,
    };
    const at = Date.parse('2026-01-01T00:01:05Z');
    const r = topRow(undefined, sample(at, { partitions: [part(0, 3), part(1, 4)], lastSlice }));
    expect(r.lag).toBe(7);
    expect(r.lastSlice).toEqual({ ageMs: 65_000, rows: 900, durationMs: 42.4 });
    expect(topRow(undefined, sample(at, { partitions: [part(0, 3), part(1, null)] })).lag).toBeNull();
    expect(formatAge(65_000)).toBe('1m05s');
    expect(formatAge(3_700_000)).toBe('1h01m');
  });

  it('renders aligned columns, a line per failing pipeline and the notes', () => {
    const a = sample(0, { messagesConsumed: 0 });
    const b = { ...sample(1000, { messagesConsumed: 12, duplicateRatio: 0.25, pendingRows: 5 }) };
    b.health = { state: 'failing', detail: 'NETWORK: connection refused' };
    const text = renderFrame('title', [topRow(a, b)], ['  users: Kafka: down']);
    expect(text).toBe(
      [
        'title',
        '',
        'PIPELINE  HEALTH   IN/s  INSERTED/s  DUP/s  DUP %  WAITING  LAG  DEAD  LAST SLICE',
        'users     failing  12.0         0.0    0.0  25.0%        5    -     0  none yet',
        '',
        '  users: failing: NETWORK: connection refused',
        '  users: Kafka: down',
        '',
      ].join('\n'),
    );
  });
});
