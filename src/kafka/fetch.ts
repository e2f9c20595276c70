/** Reading a few records at known offsets, to tell what a gap in the consumed offsets was. */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';

export interface FetchedRecord {
  offset: number;
  value: Buffer | null;
  timestamp: number;
}

/**
 * Records with offsets in [from, to] of one partition. Transaction markers
 * and compacted-away offsets have no record: the returned list skips them.
 */
export async function fetchRange(
  kafka: Kafka,
  topic: string,
  partition: number,
  from: number,
  to: number,
  timeoutMs = 15_000,
): Promise<FetchedRecord[]> {
  const consumer = kafka.consumer({ groupId: `winnow-check-${randomUUID()}`, maxWaitTimeInMs: 500 });
  const out: FetchedRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, timeoutMs);
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            if (batch.partition !== partition) return;
            for (const m of batch.messages) {
              const o = Number(m.offset);
              if (o >= from && o <= to) out.push({ offset: o, value: m.value, timestamp: Number(m.timestamp) });
            }
            const last = Number(batch.lastOffset());
            if (last >= to || Number(batch.highWatermark) - 1 <= last) {
              clearTimeout(timer);
              resolve();
            }
            await Promise.resolve();
          },
        })
        .then(() => consumer.seek({ topic, partition, offset: String(from) }), reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
