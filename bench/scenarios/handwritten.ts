/** Baseline (b): the hand-written kafkajs + Map + @clickhouse/client consumer, its drain and its memory. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Ctx } from '../context.ts';
import { fmtInt, waitUntil } from '../context.ts';
import type { HandwrittenMessage, HandwrittenSpec } from '../handwritten-child.ts';
import { count } from '../pipeline.ts';
import type { Preloaded } from './preload.ts';

export interface MapMemory {
  keys: number;
  rss: number;
  heapUsed: number;
  bytesPerKey: number;
  error?: string;
}

export interface HandwrittenResult {
  seconds: number;
  eventsPerSecond: number;
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  finalRows: number;
  peakRss: number;
  /** keys in its Map when the drain finished (all within the window) */
  mapSize: number;
  mapMemory: MapMemory[];
}

const script = fileURLToPath(new URL('../handwritten-child.ts', import.meta.url));

function spawn(
  spec: HandwrittenSpec,
  onMessage: (m: HandwrittenMessage) => void,
): { pid: number; stop(): Promise<void> } {
  const child = fork(script, [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx', '--expose-gc', '--max-old-space-size=16384'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', onMessage);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? -1,
    async stop() {
      if (child.connected) child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function mapMemory(ctx: Ctx, keys: number): Promise<MapMemory> {
  let got: MapMemory | undefined;
  let failure: string | undefined;
  const c = spawn({ mode: 'map', keys }, (m) => {
    if (m.kind === 'map')
      got = {
        keys: m.keys,
        rss: m.rss,
        heapUsed: m.heapUsed,
        bytesPerKey: m.heapUsed / Math.max(1, m.keys),
        ...(m.error ? { error: m.error } : {}),
      };
    if (m.kind === 'error') failure = m.error;
  });
  try {
    await waitUntil(
      `a Map of ${fmtInt(keys)} keys`,
      () => Promise.resolve(got ?? failure),
      (v) => v !== undefined,
      { timeoutMs: 180_000, everyMs: 100 },
    );
  } finally {
    await c.stop();
  }
  if (!got) throw new Error(`handwritten: the Map probe failed: ${failure ?? 'no answer'}`);
  ctx.log(
    `handwritten: Map of ${fmtInt(got.keys)} keys: rss ${(got.rss / 2 ** 20).toFixed(0)} MiB${got.error ? ` (${got.error})` : ''}`,
  );
  return got;
}

export async function handwrittenBaseline(ctx: Ctx, pre: Preloaded): Promise<HandwrittenResult> {
  const { servers, opts } = ctx;
  const db = servers.db();
  const d = 'bench_handwritten';
  await db.command(`CREATE DATABASE IF NOT EXISTS ${d}`);
  await db.command(
    `CREATE TABLE ${d}.users_dedup (event_id UUID, user_id UUID, name String, email String, created_at DateTime) ENGINE = MergeTree ORDER BY event_id`,
  );
  let last: Extract<HandwrittenMessage, { kind: 'progress' }> = {
    kind: 'progress',
    consumed: 0,
    kept: 0,
    mapSize: 0,
    rss: 0,
  };
  let peak = 0;
  let done: Extract<HandwrittenMessage, { kind: 'done' }> | undefined;
  let pid = -1;
  const cpu = ctx.cpu(() => [pid]);
  await cpu.begin();
  const started = performance.now();
  const child = spawn(
    {
      mode: 'consume',
      brokers: servers.kafka.brokers,
      topic: pre.topic,
      group: 'bench_handwritten',
      url: servers.clickhouse.url,
      table: `${d}.users_dedup`,
      windowMs: opts.windowMs,
    },
    (m) => {
      if (m.kind === 'progress') {
        last = m;
        peak = Math.max(peak, m.rss);
      } else if (m.kind === 'error') ctx.log(`handwritten: consumer error: ${m.error}`);
      else if (m.kind === 'done') done = m;
    },
  );
  pid = child.pid;
  try {
    await waitUntil(
      'the hand-written consumer to drain the topic',
      () => count(db, `${d}.users_dedup`),
      (n) => n >= pre.unique && last.consumed >= pre.events,
      {
        timeoutMs: Math.max(180_000, (pre.events / 2_000) * 1000),
        everyMs: 100,
        progress: (n, s) =>
          ctx.log(
            `handwritten: ${s.toFixed(0)} s, consumed ${fmtInt(last.consumed)}, final ${fmtInt(n)} / ${fmtInt(pre.unique)}`,
          ),
      },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpuSeconds = await cpu.seconds();
    await child.stop();
    const result: HandwrittenResult = {
      seconds,
      eventsPerSecond: pre.events / seconds,
      cpuSeconds,
      eventsPerCpuSecond: pre.events / cpuSeconds,
      finalRows: await count(db, `${d}.users_dedup`),
      peakRss: Math.max(peak, done?.maxRss ?? 0),
      mapSize: last.mapSize,
      mapMemory: [],
    };
    ctx.log(
      `handwritten: ${fmtInt(result.eventsPerSecond)} events/s, peak RSS ${(result.peakRss / 2 ** 20).toFixed(0)} MiB`,
    );
    for (const k of opts.mapKeys) result.mapMemory.push(await mapMemory(ctx, k));
    return result;
  } finally {
    await child.stop();
  }
}
