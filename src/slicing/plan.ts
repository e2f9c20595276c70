/** Planning the next slice from watermarks and staged heads. Pure functions. */
import { createHash } from 'node:crypto';
import type { NextOffset } from './checkpoints.ts';
import type { SliceRange } from './slice.ts';
import { byTopicPartition } from '../kafka/partitions.ts';

export interface StagedHead {
  topic: string;
  partition: number;
  /** lowest and highest staged offset at or above the partition's next offset */
  low: number;
  high: number;
}

export interface SlicePlan {
  ranges: SliceRange[];
  nextOffsets: NextOffset[];
}

const tp = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * Ranges from each partition's next offset up to its highest staged offset,
 * capped so the slice holds at most about maxRows offsets. Partitions keep
 * their watermark when they have nothing new.
 */
export function planSlice(next: NextOffset[], heads: StagedHead[], maxRows: number): SlicePlan | undefined {
  const nextBy = new Map(next.map((n) => [tp(n.topic, n.partition), n.offset]));
  const active = heads.filter((h) => h.high >= (nextBy.get(tp(h.topic, h.partition)) ?? 0));
  if (active.length === 0) return undefined;
  const perPartition = Math.max(1, Math.floor(maxRows / active.length));
  const ranges: SliceRange[] = active.map((h) => {
    const from = nextBy.get(tp(h.topic, h.partition)) ?? 0;
    // Skip empty offset space (a consumer that started late, compaction) so the cap counts real rows.
    const start = Math.max(from, h.low);
    return {
      topic: h.topic,
      partition: h.partition,
      fromOffset: from,
      toOffset: Math.min(h.high, start + perPartition - 1),
    };
  });
  return { ranges, nextOffsets: advance(next, ranges) };
}

/** Watermarks with each range's partition moved to just after the range. */
export function advance(next: NextOffset[], ranges: SliceRange[]): NextOffset[] {
  const to = new Map(ranges.map((r) => [tp(r.topic, r.partition), r.toOffset + 1]));
  const out = next.map((o) => ({ ...o, offset: to.get(tp(o.topic, o.partition)) ?? o.offset }));
  const known = new Set(next.map((o) => tp(o.topic, o.partition)));
  for (const r of ranges)
    if (!known.has(tp(r.topic, r.partition)))
      out.push({ topic: r.topic, partition: r.partition, offset: r.toOffset + 1 });
  return out.sort(byTopicPartition);
}

/**
 * A slice id that is unique even when the slices table is reset: the pipeline,
 * the sequence number and a digest of the ranges. It doubles as the insert
 * deduplication token.
 */
export function sliceId(pipeline: string, seq: number, ranges: SliceRange[]): string {
  const digest = createHash('sha256')
    .update(JSON.stringify(ranges.map((r) => [r.topic, r.partition, r.fromOffset, r.toOffset])))
    .digest('hex')
    .slice(0, 12);
  return `${pipeline}-${seq}-${digest}`;
}
