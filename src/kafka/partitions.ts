/** Topic partitions, in the one order winnow lists them: by topic, then partition. */
export function byTopicPartition(
  a: { topic: string; partition: number },
  b: { topic: string; partition: number },
): number {
  return a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1;
}

/** An offset range as winnow logs it: topic/partition:from-to. */
export function formatRange(r: { topic: string; partition: number; fromOffset: number; toOffset: number }): string {
  return `${r.topic}/${r.partition}:${r.fromOffset}-${r.toOffset}`;
}
