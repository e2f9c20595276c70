/**
 * What a consistency check looks at. A full check: everything processed. An
 * incremental check: what changed since the newest check that found the
 * pipeline consistent (slices committed after the last slice it covered,
 * replays recorded since it started, Kafka offsets above those it compared),
 * so its cost follows the traffic, not the size of the tables. A check that
 * found a problem does not move the starting point: the next one looks again.
 */
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { byTopicPartition } from '../kafka/partitions.ts';
import { objectNames } from '../provisioning/objects.ts';
import { Checkpoints } from '../slicing/checkpoints.ts';
import { rangesCondition, type SliceRange } from '../slicing/slice.ts';
import { replayedRangesSince } from './replay.ts';

export interface ScopeSummary {
  mode: 'full' | 'incremental';
  /** slices with seq above this were checked (0: from the first) */
  fromSeq: number;
  /** the newest committed slice when the check started */
  toSeq: number;
  slices: number;
  replayChunks: number;
  /** ClickHouse time the check started at; the next one takes replays from here */
  startedAt: string;
}

export interface CheckScope extends ScopeSummary {
  /** staging ranges the checked slices and replays covered, merged per partition */
  ranges: SliceRange[];
  /** per "topic/partition": Kafka offsets below this were compared by an earlier check */
  offsetsFrom: Map<string, { from: number; firstConsumed: number | null }>;
}

/** What a check needs of the newest consistent report before it (checker.ts reads it). */
export interface PriorReport {
  scope?: ScopeSummary;
  offsets?: {
    checked: boolean;
    partitions: {
      topic: string;
      partition: number;
      committed: number | null;
      checkedTo?: number | null;
      firstConsumed: number | null;
    }[];
  };
}

/** Overlapping or adjacent ranges of one partition become one. Pure. */
export function mergeRanges(ranges: SliceRange[]): SliceRange[] {
  const sorted = [...ranges].sort((a, b) => byTopicPartition(a, b) || a.fromOffset - b.fromOffset);
  const out: SliceRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.topic === r.topic && last.partition === r.partition && r.fromOffset <= last.toOffset + 1) {
      last.toOffset = Math.max(last.toOffset, r.toOffset);
    } else out.push({ ...r });
  }
  return out;
}

/**
 * What a check looks at: everything processed when there is no `prior`
 * consistent report (or a full check was asked for), else what changed since it.
 */
export async function checkScope(db: Db, p: PipelineConfig, prior: PriorReport | undefined): Promise<CheckScope> {
  const checkpoints = new Checkpoints(db, p.sink.database);
  const head = await checkpoints.committedHead(p.name);
  const startedAt = head.now ?? '1970-01-01 00:00:00.000';
  const toSeq = head.seq;
  const base = { toSeq, startedAt, offsetsFrom: new Map<string, { from: number; firstConsumed: number | null }>() };
  if (!prior?.scope) {
    // Everything processed: offsets 0 up to each partition's next offset.
    const ranges = (await checkpoints.committedNextOffsets(p.name))
      .filter((o) => o.offset > 0)
      .map((o) => ({ topic: o.topic, partition: o.partition, fromOffset: 0, toOffset: o.offset - 1 }));
    return { ...base, mode: 'full', fromSeq: 0, slices: toSeq, replayChunks: 0, ranges };
  }
  const fromSeq = Math.min(prior.scope.toSeq, toSeq);
  const [slices, replays] = await Promise.all([
    checkpoints.committedRanges(p.name, fromSeq, toSeq),
    replayedRangesSince(db, p, prior.scope.startedAt),
  ]);
  const ranges = mergeRanges([...slices, ...replays].flat());
  if (prior.offsets?.checked) {
    for (const x of prior.offsets.partitions) {
      const from = x.checkedTo ?? null;
      if (from !== null && from > 0)
        base.offsetsFrom.set(`${x.topic}/${x.partition}`, { from, firstConsumed: x.firstConsumed });
    }
  }
  return { ...base, mode: 'incremental', fromSeq, slices: slices.length, replayChunks: replays.length, ranges };
}

export function scopeSummary(s: CheckScope): ScopeSummary {
  return {
    mode: s.mode,
    fromSeq: s.fromSeq,
    toSeq: s.toSeq,
    slices: s.slices,
    replayChunks: s.replayChunks,
    startedAt: s.startedAt,
  };
}

/**
 * The seen keys a check looks at, as a condition on the seen-keys table: all
 * of them (full), or those whose key hash a checked range staged (the 8-byte
 * hash is what the slice insert reads too).
 */
export function seenScopeSql(p: PipelineConfig, s: CheckScope): ParamSql {
  if (s.mode === 'full') return { sql: '1', params: {} };
  const n = objectNames(p);
  const key = p.dedup.key.map(ident).join(', ');
  const cond = rangesCondition(s.ranges, 's');
  return {
    sql: `\`__h\` IN (SELECT sipHash64(${key}) FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql})`,
    params: cond.params,
  };
}
