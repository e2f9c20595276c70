/**
 * Live throughput: step the offered rate up until the pipeline falls behind
 * or the generator cannot offer more, then hold the best step that held for
 * the sustain period. The backlog saw-tooths (the
 * Kafka engine flushes blocks, the controller takes slices), so "keeps up"
 * compares the backlog's lows in the two halves of a step: it holds when they
 * rose by less than 2 s of input and the generator delivered >= 95% of the
 * offered rate.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, sleep } from '../context.ts';
import type { Rig } from './stream.ts';
import { stepStatus } from '../report.ts';

export interface LiveStep {
  offeredRate: number;
  achievedRate: number;
  processedRate: number;
  seconds: number;
  /** rise of the backlog's low between the step's halves, messages */
  backlogGrowth: number;
  backlogEnd: number;
  /** the backlog's low did not rise by 2 s of input: the pipeline kept up with what was delivered */
  keptUp: boolean;
  /** the generator delivered < 95% of the offered rate (the machine could not produce faster) */
  generatorLimited: boolean;
  held: boolean;
}

export interface LiveResult {
  probes: LiveStep[];
  sustained: LiveStep[];
  /** highest offered rate held for the whole sustain period; 0 when none */
  maxSustainedRate: number;
  /** highest delivered rate the pipeline kept up with for the whole sustain period, generator-limited or not */
  maxKeptUpRate: number;
}

export async function step(ctx: Ctx, rig: Rig, rate: number, seconds: number, label: string): Promise<LiveStep> {
  rig.producer.setRate(rate);
  const a0 = rig.producer.acked();
  const o0 = rig.producer.offered();
  const p0 = rig.daemon.processed();
  const started = performance.now();
  const warmup = started + seconds * 250;
  const end = started + seconds * 1000;
  const mid = (warmup + end) / 2;
  let low1 = Infinity;
  let low2 = Infinity;
  let lastReport = started;
  while (performance.now() < end) {
    await sleep(100);
    const now = performance.now();
    const b = rig.backlog();
    if (now >= warmup && now < mid) low1 = Math.min(low1, b);
    else if (now >= mid) low2 = Math.min(low2, b);
    if (now - lastReport > 5_000) {
      lastReport = now;
      ctx.log(
        `live: ${label} ${fmtInt(rate)} events/s, ${((now - started) / 1000).toFixed(0)} / ${seconds} s, backlog ${fmtInt(b)}`,
      );
    }
  }
  const s = (performance.now() - started) / 1000;
  const achievedRate = (rig.producer.acked() - a0) / s;
  const offered = (rig.producer.offered() - o0) / s;
  const growth = low2 - low1;
  const generatorLimited = achievedRate < 0.95 * Math.min(rate, offered || rate);
  const r: LiveStep = {
    offeredRate: rate,
    achievedRate,
    processedRate: (rig.daemon.processed() - p0) / s,
    seconds: s,
    backlogGrowth: growth,
    backlogEnd: rig.backlog(),
    keptUp: growth <= 2 * rate,
    generatorLimited,
    held: !generatorLimited && growth <= 2 * rate,
  };
  ctx.log(
    `live: ${label} ${fmtInt(rate)} events/s: achieved ${fmtInt(achievedRate)}, processed ${fmtInt(r.processedRate)}/s, backlog low rose ${fmtInt(growth)} -> ${stepStatus(r)}`,
  );
  return r;
}

/** Lets a backlog left by a failed step drain (to 5 s of the next step's input) at half that rate; at most 60 s. */
async function settle(ctx: Ctx, rig: Rig, next: number): Promise<void> {
  rig.producer.setRate(Math.round(next / 2));
  const deadline = performance.now() + 60_000;
  while (rig.backlog() > 5 * next && performance.now() < deadline) await sleep(250);
  if (rig.backlog() > 5 * next) ctx.log(`live: backlog still ${fmtInt(rig.backlog())} after 60 s`);
}

export async function live(ctx: Ctx, rig: Rig): Promise<LiveResult> {
  const { opts } = ctx;
  const probes: LiveStep[] = [];
  for (const rate of opts.liveRates) {
    const p = await step(ctx, rig, rate, opts.liveProbeSeconds, 'step');
    probes.push(p);
    if (!p.held) break; // fell behind, or the generator cannot offer more
  }
  // Only a rate the generator really offered can be claimed: the best step that held (not
  // generator-limited) is sustained; a generator-limited step that kept up is reported beside it.
  const worth = probes.filter((p) => p.held).map((p) => p.offeredRate);
  const candidates = worth.length > 0 ? worth.slice(-2).reverse() : [Math.round((opts.liveRates[0] ?? 10_000) / 2)];
  const sustained: LiveStep[] = [];
  for (const rate of candidates) {
    await settle(ctx, rig, rate);
    const s = await step(ctx, rig, rate, opts.liveSeconds, 'sustain');
    sustained.push(s);
    if (s.held) break;
  }
  rig.producer.setRate(0);
  const held = sustained.filter((s) => s.held).map((s) => s.offeredRate);
  const keptUp = [...probes, ...sustained].filter((s) => s.keptUp).map((s) => s.achievedRate);
  return { probes, sustained, maxSustainedRate: Math.max(0, ...held), maxKeptUpRate: Math.max(0, ...keptUp) };
}
