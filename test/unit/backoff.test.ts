import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/daemon/backoff.ts';

describe('slice retries', () => {
  const T0 = Date.parse('2026-11-30T12:00:00Z');

  it('pause twice as long after each failure, up to the cap, and not at all after a success', () => {
    const b = new Backoff({ firstMs: 1_000, maxMs: 8_000, summaryEveryMs: 60_000 });
    let now = T0;
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      b.failed('down', now);
      let w = 0;
      while (!b.ready(now + w)) w += 250;
      waits.push(w);
      now += w;
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(b.succeeded()).toBe(6);
    expect(b.ready(now)).toBe(true);
    expect(b.succeeded()).toBe(0);
  });

  it('report a failure once, then a summary a minute, and a new failure at once', () => {
    const b = new Backoff({ firstMs: 1_000, maxMs: 30_000, summaryEveryMs: 60_000 });
    const reports = [];
    for (let s = 0; s <= 130; s += 10) reports.push(b.failed('ClickHouse down', T0 + s * 1000).kind);
    expect(reports).toEqual(['new', 'quiet', 'quiet', 'quiet', 'quiet', 'quiet', 'ongoing', 'quiet', 'quiet', 'quiet', 'quiet', 'quiet', 'ongoing', 'quiet']);
    expect(b.failed('ClickHouse down', T0 + 181_000)).toEqual({ kind: 'ongoing', error: 'ClickHouse down', failures: 15, sinceMs: 181_000 });
    expect(b.failed('password refused', T0 + 182_000)).toEqual({ kind: 'new', error: 'password refused' });
  });
});
