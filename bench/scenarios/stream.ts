/**
 * The live rig shared by the latency and live phases: a fresh topic and
 * pipeline, the controller in its own process, and a paced producer on this
 * machine. Backlog = messages acknowledged by the broker minus messages the
 * controller has committed in slices.
 */
import type { Ctx } from '../context.ts';
import { waitUntil } from '../context.ts';
import { startDaemon, type DaemonProcess } from '../daemon.ts';
import { createTopic, EventSource, startPaced, type LoadMessage, type PacedProducer } from '../load.ts';
import { benchPipeline, count, migrate, stopConsumption } from '../pipeline.ts';
import type { PipelineConfig } from '../../src/config/index.ts';
import type { Db } from '../../src/clickhouse/client.ts';

export interface Rig {
  db: Db;
  pipeline: PipelineConfig;
  final: string;
  daemon: DaemonProcess;
  producer: PacedProducer;
  /** set to receive every acknowledged message (latency sampling) */
  onSent: ((m: LoadMessage) => void) | undefined;
  backlog(): number;
  stop(): Promise<{ maxRss: number }>;
}

/** A pipeline already provisioned (the state phase's): `provision` starts its consumption. */
export interface ExistingPipeline {
  pipeline: PipelineConfig;
  database: string;
  provision(db: Db): Promise<void>;
}

export async function startRig(ctx: Ctx, name: string, rate: number, existing?: ExistingPipeline): Promise<Rig> {
  const { opts, servers } = ctx;
  const topic = existing?.pipeline.source.topics[0] ?? `users_${name}`;
  const kafka = servers.kafkaClient(`bench-${name}`);
  await createTopic(kafka, topic, opts.partitions);
  const database = existing?.database ?? `bench_${name}`;
  const pipeline =
    existing?.pipeline ??
    benchPipeline({
      name,
      database,
      brokers: servers.kafka.brokers,
      topic,
      windowMs: opts.windowMs,
      levers: opts.levers,
      clickhouseUrl: servers.clickhouse.url,
    });
  const db = servers.db();
  if (existing) await existing.provision(db);
  else await migrate(db, pipeline, opts.levers);
  const daemon = startDaemon(
    { url: servers.clickhouse.url, pipeline, insertSettings: opts.levers.insert, tickMs: opts.levers.tickMs },
    (e) => ctx.log(`${name}: controller error: ${e}`),
  );
  let producer: PacedProducer | undefined;
  const stop = async (): Promise<{ maxRss: number }> => {
    const results = await Promise.allSettled([producer?.stop(), daemon.stop()]);
    await stopConsumption(db, pipeline).catch((err: unknown) =>
      ctx.log(`${name}: could not stop consumption: ${String(err)}`),
    );
    const [p, d] = results;
    if (p.status === 'rejected') ctx.log(`${name}: producer: ${String(p.reason)}`);
    return { maxRss: d.status === 'fulfilled' ? Math.max(d.value.maxRss, daemon.peakRss()) : daemon.peakRss() };
  };
  try {
    let onSent: Rig['onSent'];
    producer = await startPaced(kafka, topic, new EventSource(opts.partitions, opts.dupRatio, 7), rate, (m) =>
      onSent?.(m),
    );
    const rig: Rig = {
      db,
      pipeline,
      final: `${database}.users_dedup`,
      daemon,
      producer,
      set onSent(f) {
        onSent = f;
      },
      get onSent() {
        return onSent;
      },
      backlog: () => (producer ? producer.acked() - daemon.processed() : 0),
      stop,
    };
    // The Kafka engine joins its consumer group first; measure from the first visible rows on
    // (an existing pipeline's final table has rows already: from its first slice on).
    if (existing)
      await waitUntil(
        'the first slice',
        () => Promise.resolve(daemon.processed()),
        (n) => n > 0,
        {
          timeoutMs: 90_000,
          everyMs: 200,
        },
      );
    else
      await waitUntil(
        'the first rows in the final table',
        () => count(db, rig.final),
        (n) => n > 0,
        { timeoutMs: 90_000, everyMs: 200 },
      );
    return rig;
  } catch (err) {
    await stop();
    throw err;
  }
}
