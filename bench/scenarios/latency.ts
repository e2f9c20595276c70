/**
 * Latency produce -> visible in the final table, at a fixed offered rate:
 * about 200 messages a second (first occurrences) are remembered with their
 * produce time, and the final table is polled for them by key.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, percentile, sleep } from '../context.ts';
import type { Rig } from './stream.ts';

export interface LatencyResult {
  offeredRate: number;
  achievedRate: number;
  seconds: number;
  samples: number;
  missing: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** how often the final table was polled: the measurement's resolution */
  pollMs: number;
}

export async function latency(ctx: Ctx, rig: Rig): Promise<LatencyResult> {
  const { opts } = ctx;
  const rate = opts.latencyRate;
  rig.producer.setRate(rate);
  await sleep(2_000);
  const pending = new Map<string, number>();
  const samples: number[] = [];
  const every = Math.max(1, Math.round(rate / 200));
  let n = 0;
  rig.onSent = (m) => {
    if (!m.duplicate && n++ % every === 0) pending.set(m.eventId, m.producedAt);
  };
  const ackedAtStart = rig.producer.acked();
  const started = performance.now();
  const end = started + opts.latencySeconds * 1000;
  let polls = 0;
  let lastReport = started;
  let achievedRate = NaN;
  const deadline = end + 60_000;
  while (performance.now() < deadline) {
    if (performance.now() >= end && rig.onSent) {
      rig.onSent = undefined;
      achievedRate = (rig.producer.acked() - ackedAtStart) / ((performance.now() - started) / 1000);
    }
    if (!rig.onSent && pending.size === 0) break;
    // At most 2,000 ids a poll: ClickHouse refuses a query parameter over ~100 KB (5,000 UUIDs were refused
    // once a backlog had built up).
    const ids = [...pending.keys()].slice(0, 2_000);
    if (ids.length > 0) {
      const rows = await rig.db.rows<{ id: string }>(
        `SELECT toString(event_id) AS id FROM ${rig.final} WHERE event_id IN {ids:Array(UUID)}`,
        { ids },
      );
      const at = Date.now();
      for (const r of rows) {
        const t = pending.get(r.id);
        if (t !== undefined) samples.push(at - t);
        pending.delete(r.id);
      }
    }
    polls++;
    if (performance.now() - lastReport > 5_000) {
      lastReport = performance.now();
      ctx.log(
        `latency: ${((lastReport - started) / 1000).toFixed(0)} s at ${fmtInt(rate)} events/s offered, ${samples.length} samples, backlog ${fmtInt(rig.backlog())}`,
      );
    }
    await sleep(100);
  }
  rig.onSent = undefined;
  const sorted = samples.sort((a, b) => a - b);
  const elapsed = performance.now() - started;
  const result: LatencyResult = {
    offeredRate: rate,
    achievedRate,
    seconds: opts.latencySeconds,
    samples: sorted.length,
    missing: pending.size,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    pollMs: elapsed / Math.max(1, polls),
  };
  ctx.log(
    `latency: p50 ${fmtInt(result.p50Ms)} ms, p95 ${fmtInt(result.p95Ms)} ms, p99 ${fmtInt(result.p99Ms)} ms (${result.samples} samples, ${result.missing} missing)`,
  );
  return result;
}
