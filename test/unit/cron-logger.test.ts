/**
 * node-cron, which schedules the daemon's consistency checks, prints its own
 * warnings (a run skipped while the previous one still runs) as coloured plain
 * text on the console unless given a logger. The daemon's cronLogger turns
 * them into JSON lines of winnow's logger. Real node-cron, a real overlap.
 */
import cron from 'node-cron';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cronLogger } from '../../src/daemon/cron-logger.ts';
import { createLogger } from '../../src/log.ts';

describe('the scheduler logs through winnow', () => {
  afterEach(() => vi.restoreAllMocks());

  it('an overlapping run is a JSON debug line without colour codes, nothing on the console', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', write: (l) => lines.push(l) });
    const consoleLines: unknown[] = [];
    for (const m of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      vi.spyOn(console, m).mockImplementation((...args: unknown[]) => void consoleLines.push(args));
    }
    const task = cron.schedule('* * * * * *', () => sleep(2_500), {
      noOverlap: true,
      logger: cronLogger(logger, 'p1'),
    });
    await sleep(4_200);
    await task.destroy();
    expect(consoleLines).toEqual([]);
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; pipeline: string; message: string });
    const overlaps = parsed.filter((l) => l.msg === 'scheduler' && /still running/.test(l.message));
    expect(overlaps.length).toBeGreaterThanOrEqual(1);
    for (const l of parsed) {
      expect(l.pipeline).toBe('p1');
      expect(l.message).not.toMatch(/\x1b\[/);
    }
  }, 10_000);
});
