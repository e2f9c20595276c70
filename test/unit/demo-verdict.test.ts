import { describe, expect, it } from 'vitest';
import { demoVerdict, type Counters } from '../../scripts/demo-verdict.ts';

const zero: Counters = { messagesConsumed: 0, inserted: 0, duplicatesDropped: 0, deadLetters: 0, pendingRows: 0 };

describe('the demo verdict', () => {
  it('reconciles this run’s counts (after less before) with what was sent', () => {
    const before = { ...zero, messagesConsumed: 50, inserted: 40, duplicatesDropped: 10 };
    const after = { ...zero, messagesConsumed: 1250, inserted: 1040, duplicatesDropped: 210 };
    expect(demoVerdict({ events: 1000, duplicates: 200 }, before, after)).toEqual({
      ok: true,
      line: 'OK: sent 1200, inserted 1000 = distinct sent, dropped 200',
    });
  });

  it('fails when nothing arrived or nothing was sent', () => {
    expect(demoVerdict({ events: 10, duplicates: 2 }, zero, zero)).toEqual({
      ok: false,
      line: 'FAILED: sent 12 (10 distinct, 2 duplicates), inserted 0, dropped 0: nothing arrived in ClickHouse',
    });
    expect(demoVerdict({ events: 0, duplicates: 0 }, zero, zero).line).toContain('nothing was sent');
  });

  it('fails, naming each mismatch, when the numbers do not reconcile', () => {
    const after = { messagesConsumed: 11, inserted: 9, duplicatesDropped: 1, deadLetters: 1, pendingRows: 1 };
    const v = demoVerdict({ events: 10, duplicates: 2 }, zero, after);
    expect(v.ok).toBe(false);
    expect(v.line).toBe(
      'FAILED: sent 12 (10 distinct, 2 duplicates), inserted 9, dropped 1: 11 consumed, not 12; ' +
        '1 rows still waiting for a slice; 1 dead letters; inserted 9, not the 10 distinct sent; ' +
        'dropped 1, not the 2 duplicates sent',
    );
  });
});
