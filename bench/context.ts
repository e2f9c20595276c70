/** What every phase gets: options, servers, progress output, bounded waiting. */
import type { Options } from './options.ts';
import { CpuMeter } from './probe.ts';
import type { BenchServers } from './servers.ts';

export interface Ctx {
  opts: Options;
  servers: BenchServers;
  /** a progress line on stderr, prefixed with the elapsed time of the run */
  log(line: string): void;
  /** CPU of ClickHouse, Kafka and this process (the generator), plus any extra pids */
  cpu(extra?: () => number[]): CpuMeter;
}

export function createCtx(opts: Options, servers: BenchServers, started: number): Ctx {
  return {
    opts,
    servers,
    log: (line) =>
      process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`),
    cpu: (extra = () => []) => new CpuMeter(() => [servers.clickhouse.pid, servers.kafka.pid, process.pid, ...extra()]),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `everyMs` until `done` accepts its value; reports
 * progress every 5 s; throws after `timeoutMs` with the last value.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  opts: { timeoutMs: number; everyMs?: number; progress?: (v: T, elapsedS: number) => void },
): Promise<T> {
  const started = performance.now();
  let lastReport = started;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    const now = performance.now();
    if (now - started > opts.timeoutMs)
      throw new Error(
        `timed out after ${Math.round(opts.timeoutMs / 1000)} s waiting for ${what}; last: ${JSON.stringify(v)}`,
      );
    if (opts.progress && now - lastReport > 5_000) {
      lastReport = now;
      opts.progress(v, (now - started) / 1000);
    }
    await sleep(opts.everyMs ?? 200);
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

export function median(xs: number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
}

export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : '-');
