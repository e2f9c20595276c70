/** Small helpers every part of the fault harness uses. */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** The dedup window of every fault scenario's pipeline. */
export const WINDOW_MS = 10 * 60_000;

export function hex(n = 4): string {
  return randomBytes(n).toString('hex');
}

/** Polls `probe` (errors count as "not yet": servers may be down on purpose) until `done`. */
export async function waitFor<T>(
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  timeoutMs: number,
  what: string,
  pollMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError
        ? `last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`
        : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${why}`);
    }
    await sleep(pollMs);
  }
}
