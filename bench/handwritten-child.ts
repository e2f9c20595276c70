/**
 * Baseline (b), the consumer a user would write by hand: kafkajs reads the
 * topic, a JavaScript Map remembers each kept event_id with its time (entries
 * older than the window expire), and every batch's kept rows go to ClickHouse
 * with @clickhouse/client, offsets committed after the insert. Its state is
 * lost on a crash; it is here for speed and memory only.
 * Modes: `consume` (report progress over IPC until told to stop) and `map`
 * (fill the Map with N keys and report the memory it takes).
 */
import { randomUUID } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';

export type HandwrittenSpec =
  | { mode: 'consume'; brokers: string[]; topic: string; group: string; url: string; table: string; windowMs: number }
  | { mode: 'map'; keys: number };

export type HandwrittenMessage =
  | { kind: 'progress'; consumed: number; kept: number; mapSize: number; rss: number }
  | { kind: 'map'; keys: number; rss: number; heapUsed: number; error?: string }
  | { kind: 'error'; error: string }
  | { kind: 'done'; maxRss: number; cpuSeconds: number };

const spec = JSON.parse(process.argv[2] ?? '{}') as HandwrittenSpec;
const send = (m: HandwrittenMessage): void => {
  if (process.connected) process.send?.(m);
};

interface UserEvent {
  event_id: string;
  user_id: string;
  user_name: string;
  user_email: string;
  created_at: string;
}

async function consume(s: Extract<HandwrittenSpec, { mode: 'consume' }>): Promise<void> {
  const ch = createClient({ url: s.url });
  const consumer = new Kafka({ clientId: 'handwritten', brokers: s.brokers, logLevel: logLevel.NOTHING }).consumer({
    groupId: s.group,
  });
  const seen = new Map<string, number>();
  let consumed = 0;
  let kept = 0;
  const expire = setInterval(() => {
    const horizon = Date.now() - s.windowMs;
    for (const [k, t] of seen) {
      if (t >= horizon) break; // insertion order is time order
      seen.delete(k);
    }
  }, 10_000);
  const report = setInterval(
    () => send({ kind: 'progress', consumed, kept, mapSize: seen.size, rss: process.memoryUsage().rss }),
    250,
  );
  await consumer.connect();
  await consumer.subscribe({ topic: s.topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async (payload) => {
      const { batch } = payload;
      const rows: Record<string, string>[] = [];
      for (const m of batch.messages) {
        const e = JSON.parse(m.value?.toString() ?? '{}') as UserEvent;
        const t = Number(m.timestamp);
        const prior = seen.get(e.event_id);
        if (prior === undefined || Math.abs(t - prior) >= s.windowMs) {
          seen.delete(e.event_id);
          seen.set(e.event_id, t);
          rows.push({
            event_id: e.event_id,
            user_id: e.user_id,
            name: e.user_name,
            email: e.user_email,
            created_at: e.created_at,
          });
        }
      }
      if (rows.length > 0) {
        await ch.insert({
          table: s.table,
          values: rows,
          format: 'JSONEachRow',
          clickhouse_settings: { date_time_input_format: 'best_effort' },
        });
      }
      const last = batch.messages[batch.messages.length - 1];
      if (last) payload.resolveOffset(last.offset);
      consumed += batch.messages.length;
      kept += rows.length;
      await payload.heartbeat();
    },
  });
  await new Promise<void>((resolve) => {
    process.on('message', (m) => m === 'stop' && resolve());
    process.on('disconnect', () => resolve());
  });
  clearInterval(expire);
  clearInterval(report);
  await consumer.disconnect();
  await ch.close();
}

function fillMap(keys: number): void {
  const seen = new Map<string, number>();
  const now = Date.now();
  let error: string | undefined;
  try {
    // Keys as JSON.parse makes them (flat strings), not randomUUID's concatenations.
    for (let i = 0; i < keys; i++) seen.set((JSON.parse(`{"k":"${randomUUID()}"}`) as { k: string }).k, now + i);
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  (globalThis as { gc?: () => void }).gc?.();
  const mu = process.memoryUsage();
  send({ kind: 'map', keys: seen.size, rss: mu.rss, heapUsed: mu.heapUsed, ...(error ? { error } : {}) });
}

async function main(): Promise<void> {
  if (spec.mode === 'map') fillMap(spec.keys);
  else await consume(spec);
}

main()
  .catch((err: unknown) => send({ kind: 'error', error: err instanceof Error ? err.message : String(err) }))
  .finally(() => {
    const ru = process.resourceUsage();
    send({ kind: 'done', maxRss: ru.maxRSS * 1024, cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6 });
    if (process.connected) process.disconnect();
  });
