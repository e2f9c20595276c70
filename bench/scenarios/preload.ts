/** The drain phases' shared input: one topic pre-loaded once, read by winnow and both baselines. */
import type { Ctx } from '../context.ts';
import { fmtInt } from '../context.ts';
import { createTopic, EventSource, preload } from '../load.ts';

export interface Preloaded {
  topic: string;
  events: number;
  /** distinct event_ids: the rows a correct dedup keeps */
  unique: number;
  duplicates: number;
  avgBytes: number;
  produceSeconds: number;
  produceRate: number;
}

export async function preloadTopic(ctx: Ctx): Promise<Preloaded> {
  const { opts, servers } = ctx;
  const topic = 'users_drain';
  const kafka = servers.kafkaClient('bench-preload');
  await createTopic(kafka, topic, opts.partitions);
  const source = new EventSource(opts.partitions, opts.dupRatio);
  ctx.log(`preload: producing ${fmtInt(opts.events)} events to ${topic} (${opts.partitions} partitions)`);
  const r = await preload(kafka, topic, source, opts.events, (line) => ctx.log(line));
  const c = source.counts;
  ctx.log(
    `preload: ${fmtInt(r.rate)} events/s, ${(c.bytes / c.messages).toFixed(0)} bytes/event, ${fmtInt(c.duplicates)} duplicates`,
  );
  return {
    topic,
    events: c.messages,
    unique: c.originals,
    duplicates: c.duplicates,
    avgBytes: c.bytes / c.messages,
    produceSeconds: r.seconds,
    produceRate: r.rate,
  };
}
