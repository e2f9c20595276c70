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
import { CHECKS_TABLE, objectNames, REPLAYS_TABLE, SLICES_TABLE } from '../provisioning/objects.ts';
import { rangesCondition, type SliceRange } from '../slicing/slice.ts';

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

interface PriorReport {
  scope?: ScopeSummary;
  offsets?: { checked: boolean; partitions: { topic: string; partition: number; committed: number | null; checkedTo?: number | null; firstConsumed: number | null }[] };
}

/** Overlapping or adjacent ranges of one partition become one. Pure. */
export function mergeRanges(ranges: SliceRange[]): SliceRange[] {
  const sorted = [...ranges].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.fromOffset - b.fromOffset);
  const out: SliceRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.topic === r.topic && last.partition === r.partition && r.fromOffset <= last.toOffset + 1) {
      last.toOffset = Math.max(last.toOffset, r.toOffset);
    } else out.push({ ...r });
  }
  return out;
}

type RangeRow = { topic: string; partition: number; from_offset: string; to_offset: string };
const toRange = (x: RangeRow): SliceRange => ({ topic: x.topic, partition: x.partition, fromOffset: Number(x.from_offset), toOffset: Number(x.to_offset) });

export async function checkScope(db: Db, p: PipelineConfig, full: boolean): Promise<CheckScope> {
  const database = p.sink.database;
  const [now] = await db.rows<{ now: string; seq: string }>(
    `SELECT toString(now64(3)) AS now, max(seq) AS seq FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed'`,
    { p: p.name },
  );
  const startedAt = now?.now ?? '1970-01-01 00:00:00.000';
  const toSeq = Number(now?.seq ?? 0);
  const priorRows = full
    ? []
    : await db.rows<{ report: string }>(
        `SELECT report FROM ${qualified(database, CHECKS_TABLE)} WHERE pipeline = {p:String} AND ok = 1 ORDER BY checked_at DESC LIMIT 1`,
        { p: p.name },
      );
  const prior = priorRows[0] ? (JSON.parse(priorRows[0].report) as PriorReport) : undefined;
  const base = { toSeq, startedAt, offsetsFrom: new Map<string, { from: number; firstConsumed: number | null }>() };
  if (!prior?.scope) {
    // Everything processed: offsets 0 up to each partition's next offset.
    const rows = await db.rows<{ next: { topic: string; partition: number; offset: string }[] }>(
      `SELECT next_offsets AS next FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed' ORDER BY seq DESC LIMIT 1`,
      { p: p.name },
    );
    const ranges = (rows[0]?.next ?? [])
      .filter((o) => Number(o.offset) > 0)
      .map((o) => ({ topic: o.topic, partition: o.partition, fromOffset: 0, toOffset: Number(o.offset) - 1 }));
    return { ...base, mode: 'full', fromSeq: 0, slices: toSeq, replayChunks: 0, ranges };
  }
  const fromSeq = Math.min(prior.scope.toSeq, toSeq);
  const [slices, replays] = await Promise.all([
    db.rows<{ ranges: RangeRow[] }>(
      `SELECT ranges FROM ${qualified(database, SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed' AND seq > {from:UInt64} AND seq <= {to:UInt64}`,
      { p: p.name, from: fromSeq, to: toSeq },
    ),
    db.rows<{ ranges: RangeRow[] }>(
      `SELECT ranges FROM ${qualified(database, REPLAYS_TABLE)} WHERE pipeline = {p:String} AND at >= toDateTime64({since:String}, 3, 'UTC')`,
      { p: p.name, since: prior.scope.startedAt },
    ),
  ]);
  const ranges = mergeRanges([...slices, ...replays].flatMap((s) => s.ranges.map(toRange)));
  if (prior.offsets?.checked) {
    for (const x of prior.offsets.partitions) {
      const from = x.checkedTo ?? null;
      if (from !== null && from > 0) base.offsetsFrom.set(`${x.topic}/${x.partition}`, { from, firstConsumed: x.firstConsumed });
    }
  }
  return { ...base, mode: 'incremental', fromSeq, slices: slices.length, replayChunks: replays.length, ranges };
}

export function scopeSummary(s: CheckScope): ScopeSummary {
  return { mode: s.mode, fromSeq: s.fromSeq, toSeq: s.toSeq, slices: s.slices, replayChunks: s.replayChunks, startedAt: s.startedAt };
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
  return { sql: `\`__h\` IN (SELECT sipHash64(${key}) FROM ${qualified(n.database, n.staging)} WHERE ${cond.sql})`, params: cond.params };
}
