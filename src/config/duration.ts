/**
 * Durations as people write them in the config file: an integer and a unit,
 * optionally several from largest to smallest (`1h30m`). Integers only, so a
 * duration always maps to a whole number of milliseconds.
 */
import { WinnowError } from '../errors.ts';

/** The expected form, for error messages. */
export const DURATION_FORM = 'a duration like 90s, 15m, 1h or 7d';

const UNITS = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
] as const;

/** Milliseconds, or undefined when `s` is not a duration. */
export function tryParseDuration(s: string): number | undefined {
  if (s.length === 0) return undefined;
  let total = 0;
  let lastUnit = -1;
  // Sticky, and `ms` before `m` so that "5ms" is not read as 5 minutes and a stray "s".
  const part = /(\d+)(ms|d|h|m|s)/y;
  while (part.lastIndex < s.length) {
    const m = part.exec(s);
    if (m === null) return undefined;
    const unit = UNITS.findIndex(([u]) => u === m[2]);
    // Units strictly from largest to smallest: "30m1h" and "1h1h" are typos, not sums.
    if (unit <= lastUnit) return undefined;
    lastUnit = unit;
    total += Number(m[1]) * (UNITS[unit]?.[1] ?? Number.NaN);
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/** Milliseconds; throws CONFIG_INVALID naming the expected form. */
export function parseDuration(s: string): number {
  const ms = tryParseDuration(s);
  if (ms === undefined) {
    throw new WinnowError('CONFIG_INVALID', `expected ${DURATION_FORM}, got ${JSON.stringify(s)}`, {
      hint: 'units are ms, s, m, h and d; combine them from largest to smallest, e.g. 1h30m',
    });
  }
  return ms;
}

/** The shortest form parseDuration reads back to the same value: 5400000 -> "1h30m", 0 -> "0s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return '0s';
  let out = '';
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return ms < 0 ? `-${out}` : out;
}
