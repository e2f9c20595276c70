import { describe, expect, it } from 'vitest';
import { formatBytes, formatTask, ProgressLine } from '../../src/cli/progress.ts';

function fake(tty: boolean) {
  let t = 0;
  const out: string[] = [];
  const p = new ProgressLine({ tty, write: (s) => out.push(s), now: () => t });
  return { p, out, advance: (ms: number) => (t += ms) };
}

describe('progress line', () => {
  it('formats bytes of total with percent, bytes alone without a total, and the elapsed seconds', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(47_662_313)).toBe('47.7 MB');
    expect(formatTask({ text: 'downloading', bytes: 12_300_000, total: 47_662_313 }, 4_500)).toBe(
      'downloading 12.3 MB of 47.7 MB (25%), 4s',
    );
    expect(formatTask({ text: 'downloading', bytes: 2_000 }, 0)).toBe('downloading 2.0 kB, 0s');
    expect(formatTask({ text: 'starting ClickHouse' }, 61_000)).toBe('starting ClickHouse, 61s');
  });

  it('not a terminal: plain lines, the first after 5 s, then at most one every 2 s; finished tasks print at once', () => {
    const { p, out, advance } = fake(false);
    p.update('jars', { text: 'downloading', bytes: 0, total: 100 });
    p.update('ch', { text: 'starting ClickHouse' });
    for (let i = 1; i <= 10; i++) {
      advance(1000);
      p.update('jars', { text: 'downloading', bytes: i * 10, total: 100 });
    }
    p.done('ch', 'ClickHouse ready');
    expect(out).toEqual([
      'downloading 50 B of 100 B (50%), 5s | starting ClickHouse, 5s\n',
      'downloading 70 B of 100 B (70%), 7s | starting ClickHouse, 7s\n',
      'downloading 90 B of 100 B (90%), 9s | starting ClickHouse, 9s\n',
      'ClickHouse ready\n',
    ]);
    expect(out.join('')).not.toContain('\r');
  });

  it('not a terminal: a wait shorter than 5 s prints nothing', () => {
    const { p, out, advance } = fake(false);
    p.update('ch', { text: 'starting ClickHouse' });
    advance(4_900);
    p.update('ch', { text: 'starting ClickHouse' });
    p.done('ch');
    p.stop();
    expect(out).toEqual([]);
  });

  it('on a terminal: one line rewritten in place, cleared for a message and when stopped', () => {
    const { p, out, advance } = fake(true);
    p.update('jars', { text: 'downloading', bytes: 10, total: 100 });
    advance(100);
    p.update('jars', { text: 'downloading', bytes: 20, total: 100 });
    p.update('jars', { text: 'downloading', bytes: 20, total: 100 });
    p.done('jars', 'jars ready');
    p.update('kafka', { text: 'starting Kafka' });
    p.stop();
    expect(out).toEqual([
      '\r\x1b[Kdownloading 10 B of 100 B (10%), 0s',
      '\r\x1b[Kdownloading 20 B of 100 B (20%), 0s',
      '\r\x1b[K',
      'jars ready\n',
      '\r\x1b[Kstarting Kafka, 0s',
      '\r\x1b[K',
    ]);
  });
});
