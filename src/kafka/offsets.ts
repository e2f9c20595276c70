/** Kafka's view of a pipeline: log-end offsets of its topics and the offsets ClickHouse's consumer group committed. */
import type { Admin } from 'kafkajs';
import { byTopicPartition } from './partitions.ts';

export interface PartitionOffsets {
  topic: string;
  partition: number;
  logStart: number;
  logEnd: number;
  committed: number | null;
}

export async function topicOffsets(admin: Admin, topics: string[], groupId: string): Promise<PartitionOffsets[]> {
  const out: PartitionOffsets[] = [];
  const committed = new Map<string, number>();
  const groups = await admin.fetchOffsets({ groupId, topics });
  for (const t of groups) {
    for (const p of t.partitions) {
      const o = Number(p.offset);
      if (o >= 0) committed.set(`${t.topic}/${p.partition}`, o);
    }
  }
  for (const topic of topics) {
    const parts = await admin.fetchTopicOffsets(topic);
    for (const p of parts) {
      out.push({
        topic,
        partition: p.partition,
        logStart: Number(p.low),
        logEnd: Number(p.high),
        committed: committed.get(`${topic}/${p.partition}`) ?? null,
      });
    }
  }
  return out.sort(byTopicPartition);
}

/**
 * ClickHouse's Kafka engine starts a new group at the earliest offset and has
 * no setting for "latest"; committing the log end for a group that has no
 * offsets yet makes it start there. Returns the partitions it set.
 */
export async function seedGroupAtLatest(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  // On a new broker the first group request creates __consumer_offsets: for a moment the
  // coordinator kafkajs found is not (yet) the coordinator. Each step is idempotent: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await seedOnce(admin, groupId, topics);
    } catch (err) {
      // kafkajs may hand the protocol error over as the cause of a retries-exceeded error.
      const e = err as { code?: number; cause?: { code?: number } };
      const code = e.code ?? e.cause?.code ?? 0;
      if (attempt >= 10 || !COORDINATOR_NOT_READY.has(code)) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** Kafka's COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE and NOT_COORDINATOR. */
const COORDINATOR_NOT_READY = new Set([14, 15, 16]);

async function seedOnce(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  const existing = await admin.fetchOffsets({ groupId, topics });
  if (existing.some((t) => t.partitions.some((p) => Number(p.offset) >= 0))) return 0;
  const known = new Set(await admin.listTopics());
  let set = 0;
  for (const topic of topics) {
    if (!known.has(topic)) continue; // a topic created later starts at offset 0, which is its end
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.setOffsets({
      groupId,
      topic,
      partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
    });
    set += ends.length;
  }
  return set;
}

/**
 * A consumer group that takes over from another (a changed `source.consumerGroup`)
 * starts where the other stopped: its committed offsets of `topics` are
 * committed for `to`, unless `to` has offsets of its own (then it is left as
 * it is and the result is undefined) or `overwrite` says to (the final offsets,
 * once the old group's consumers left). Topics Kafka does not know are passed over.
 * Returns the partitions set.
 */
export async function copyGroupOffsets(
  admin: Admin,
  from: string,
  to: string,
  topics: string[],
  overwrite = false,
): Promise<number | undefined> {
  const known = new Set(await admin.listTopics());
  const present = topics.filter((t) => known.has(t));
  if (present.length === 0) return 0;
  const existing = await admin.fetchOffsets({ groupId: to, topics: present });
  if (!overwrite && existing.some((t) => t.partitions.some((p) => Number(p.offset) >= 0))) return undefined;
  let set = 0;
  for (const t of await admin.fetchOffsets({ groupId: from, topics: present })) {
    const partitions = t.partitions
      .filter((p) => Number(p.offset) >= 0)
      .map((p) => ({ partition: p.partition, offset: p.offset }));
    if (partitions.length === 0) continue;
    await admin.setOffsets({ groupId: to, topic: t.topic, partitions });
    set += partitions.length;
  }
  return set;
}

/**
 * The log end committed for the partitions of `topics` the group has no
 * offset for (a topic added with initialOffset latest). Returns the partitions set.
 */
export async function seedTopicsAtLatest(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  const known = new Set(await admin.listTopics());
  const committed = new Set<string>();
  for (const t of await admin.fetchOffsets({ groupId, topics: topics.filter((x) => known.has(x)) })) {
    for (const p of t.partitions) if (Number(p.offset) >= 0) committed.add(`${t.topic}/${p.partition}`);
  }
  let set = 0;
  for (const topic of topics) {
    if (!known.has(topic)) continue;
    const ends = (await admin.fetchTopicOffsets(topic)).filter((p) => !committed.has(`${topic}/${p.partition}`));
    if (ends.length === 0) continue;
    await admin.setOffsets({
      groupId,
      topic,
      partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })),
    });
    set += ends.length;
  }
  return set;
}
