/** Kafka's view of a pipeline: log-end offsets of its topics and the offsets ClickHouse's consumer group committed. */
import type { Admin } from 'kafkajs';

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
  return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
}
