/**
 * The fault suite's stream on the Kafka side: producing the seeded messages
 * (paced, resent until acknowledged), reading back what Kafka holds, and a
 * consumer group's committed offsets.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { expect } from 'vitest';
import { byTopicPartition } from '../../src/kafka/partitions.ts';
import type { GenMessage } from '../support/oracle.ts';
import { hex } from './common.ts';

export interface ProduceOptions {
  /** messages per send; default 200 */
  batch?: number;
  /** pause after each send, ms (a paced stream); default 0 */
  pauseMs?: number;
  /** called after each acknowledged send with the number of messages sent so far */
  onProgress?: (sent: number) => void;
  /** offered rate, messages/s: each send waits until its batch is due (from the start); default unpaced */
  ratePerSec?: number;
  /** asked before each send: true ends the stream there (the result's `sent` says how much of `msgs` went) */
  stop?: () => boolean;
}

/**
 * Sends `msgs` in order (per partition in timestamp order), with an
 * idempotent producer so the client's own retries never write a message
 * twice. A send that still fails (the broker is away for long) is sent again
 * until acknowledged; `resent` counts those, and the oracle then reads the
 * log back (see `readLog`), since a failed send may have been written.
 */
export async function produce(
  kafka: Kafka,
  msgs: GenMessage[],
  opts: ProduceOptions = {},
): Promise<{ resent: number; slowestMs: number; sent: number }> {
  const batch = opts.batch ?? 200;
  let producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let resent = 0;
  let slowestMs = 0;
  let sent = 0;
  const begun = Date.now();
  try {
    for (let i = 0; i < msgs.length; i += batch) {
      if (opts.ratePerSec) {
        const due = begun + (i / opts.ratePerSec) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      if (opts.stop?.()) break;
      const part = msgs.slice(i, i + batch);
      const byTopic = new Map<string, GenMessage[]>();
      for (const m of part) byTopic.set(m.topic, [...(byTopic.get(m.topic) ?? []), m]);
      const record = {
        topicMessages: [...byTopic.entries()].map(([topic, ms]) => ({
          topic,
          messages: ms.map((m) => ({ partition: m.partition, timestamp: String(m.timestamp), value: m.value })),
        })),
      };
      const started = Date.now();
      const deadline = started + 120_000;
      for (;;) {
        try {
          await producer.sendBatch(record);
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          resent++;
          await producer.disconnect().catch(() => undefined);
          await sleep(500);
          producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
          await producer.connect().catch(() => undefined);
        }
      }
      slowestMs = Math.max(slowestMs, Date.now() - started);
      sent = Math.min(msgs.length, i + batch);
      opts.onProgress?.(sent);
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return { resent, slowestMs, sent };
}

/**
 * What Kafka holds in `topics`, mapped back to the generated messages (kind
 * and phase from the generator): the oracle's input when sends may have been
 * repeated. Sorted by topic, partition, offset.
 */
export async function readLog(kafka: Kafka, topics: string[], generated: GenMessage[][]): Promise<GenMessage[][]> {
  const byContent = new Map<string, GenMessage>();
  for (const m of generated.flat())
    byContent.set(`${m.topic}/${m.partition}/${m.timestamp}/${m.value.toString('base64')}`, m);
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map<string, number>();
  try {
    for (const t of topics)
      for (const p of await admin.fetchTopicOffsets(t)) ends.set(`${t}/${p.partition}`, Number(p.high));
  } finally {
    await admin.disconnect();
  }
  const want = [...ends.values()].reduce((a, b) => a + b, 0);
  const got: { m: GenMessage; offset: number }[] = [];
  const strangers: string[] = [];
  const consumer = kafka.consumer({ groupId: `winnow-faults-readback-${hex()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    await consumer.run({
      autoCommit: false,
      eachMessage: ({ topic, partition, message }) => {
        const k = `${topic}/${partition}/${message.timestamp}/${(message.value ?? Buffer.alloc(0)).toString('base64')}`;
        const m = byContent.get(k);
        if (m) got.push({ m, offset: Number(message.offset) });
        else strangers.push(k);
        if (got.length + strangers.length >= want) done();
        return Promise.resolve();
      },
    });
    if (want > 0)
      await Promise.race([
        all,
        sleep(60_000).then(() => Promise.reject(new Error(`read ${got.length} of ${want} messages back`))),
      ]);
  } finally {
    await consumer.disconnect();
  }
  expect(strangers, 'messages in Kafka that the generator never made').toEqual([]);
  got.sort((a, b) => byTopicPartition(a.m, b.m) || a.offset - b.offset);
  return generated.map((_p, i) => got.filter((g) => g.m.phase === i + 1).map((g) => g.m));
}

/** Committed offsets of a consumer group, per topic/partition. */
export async function groupOffsets(admin: Admin, groupId: string, topics: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const t of await admin.fetchOffsets({ groupId, topics })) {
    for (const p of t.partitions) out.set(`${t.topic}/${p.partition}`, Number(p.offset));
  }
  return out;
}
