import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/daemon/backoff.ts';

describe('slice retries', () => {
  const T0 = Date.parse('2026-11-30T12:00:00Z');

  const pauses = (b: Backoff, n: number): number[] => {
    let now = T0;
    const waits: number[] = [];
    for (let i = 0; i < n; i++) {
      b.failed('down', now);
      waits.push(b.nextAttemptAt - now);
      now = b.nextAttemptAt;
    }
    return waits;
  };

  it('pause twice as long after each failure, up to the cap, and not at all after a success', () => {
    const b = new Backoff({ firstMs: 1_000, maxMs: 8_000, summaryEveryMs: 60_000, random: () => 0 });
    expect(pauses(b, 6)).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(b.failures).toBe(6);
    expect(b.succeeded()).toBe(6);
    expect(b.ready(T0)).toBe(true);
    expect(b.succeeded()).toBe(0);
    expect(b.firstAt).toBe(0);
  });

  it('jitter shortens each pause by up to the jitter share, never lengthens it', () => {
    const low = new Backoff({ firstMs: 1_000, maxMs: 8_000, summaryEveryMs: 60_000, random: () => 0.999_999 });
    expect(pauses(low, 5)).toEqual([500, 1_000, 2_000, 4_000, 4_000]);
    let seed = 7;
    const dice = (): number => ((seed = (seed * 16_807) % 2_147_483_647) - 1) / 2_147_483_646;
    const random = new Backoff({ firstMs: 1_000, maxMs: 30_000, summaryEveryMs: 60_000, jitter: 0.5, random: dice });
    const w = pauses(random, 8);
    const full = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000];
    w.forEach((x, i) => {
      expect(x).toBeGreaterThanOrEqual(full[i]! / 2);
      expect(x).toBeLessThanOrEqual(full[i]!);
    });
    expect(new Set(w.slice(5)).size, 'capped pauses still differ').toBeGreaterThan(1);
  });

  it('report the first failure of a streak once, then a summary a minute, whatever the error says', () => {
    const b = new Backoff({ firstMs: 1_000, maxMs: 30_000, summaryEveryMs: 60_000 });
    const reports = [];
    for (let s = 0; s <= 130; s += 10)
      reports.push(b.failed(s === 50 ? 'password refused' : 'ClickHouse down', T0 + s * 1000).kind);
    expect(reports).toEqual([
      'new',
      'quiet',
      'quiet',
      'quiet',
      'quiet',
      'quiet',
      'ongoing',
      'quiet',
      'quiet',
      'quiet',
      'quiet',
      'quiet',
      'ongoing',
      'quiet',
    ]);
    expect(b.firstAt).toBe(T0);
    expect(b.failed('password refused', T0 + 181_000)).toEqual({
      kind: 'ongoing',
      error: 'password refused',
      failures: 15,
      sinceMs: 181_000,
      firstAt: T0,
    });
    expect(b.succeeded()).toBe(15);
    expect(b.failed('password refused', T0 + 182_000)).toEqual({ kind: 'new', error: 'password refused' });
  });
});
