/**
 * The controller's cadences: a configured interval rounded to an even step, as
 * a six-field cron expression fires it. The slice loop sleeps `effectiveMs`;
 * the consistency check runs on the expression (node-cron). Pure.
 */

/**
 * A six-field cron expression that fires every `intervalMs`, rounded to a
 * whole number of seconds (or minutes) that divides the minute (or hour)
 * evenly, so ticks stay evenly spaced; returns the interval actually used.
 */
export function cronFor(intervalMs: number): { expression: string; effectiveMs: number } {
  const s = Math.max(1, Math.round(intervalMs / 1000));
  if (s < 60) {
    const divisors = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30];
    const d = divisors.reduce((best, x) => (Math.abs(x - s) < Math.abs(best - s) ? x : best), 1);
    return { expression: d === 1 ? '* * * * * *' : `*/${d} * * * * *`, effectiveMs: d * 1000 };
  }
  const m = Math.max(1, Math.round(s / 60));
  const divisors = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60];
  const d = divisors.reduce((best, x) => (Math.abs(x - m) < Math.abs(best - m) ? x : best), 1);
  return {
    expression: d === 60 ? '0 0 * * * *' : d === 1 ? '0 * * * * *' : `0 */${d} * * * *`,
    effectiveMs: d * 60_000,
  };
}
