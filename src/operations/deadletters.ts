/**
 * Dead letters: messages that could not become a row, kept with the reason.
 * Once the cause is fixed (a column made optional, a type widened), `replay`
 * runs them through the same validation again: those that pass go to staging
 * with their original Kafka coordinates and through the dedup, and leave the
 * dead letters; the others stay, with their new reason. Messages the final
 * table refused (rejections.ts) are staged already: once its cause is fixed
 * they are only run through the dedup again, and leave the dead letters.
 * The statements on the dead-letter table (winnow_<p>_errors) are built here,
 * but for the refused rows the slice loop writes (slicing/rejections.ts).
 */
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified, type ParamSql } from '../clickhouse/sql.ts';
import { UNTOKENED_INSERT_SELECT } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames, validatedSelect } from '../provisioning/objects.ts';
import { REFUSED_BY_FINAL, refusedCoordinatesSql } from '../slicing/rejections.ts';
import type { OffsetSpec, Replayer, ReplayResult } from './replay.ts';

export interface DeadLetter {
  topic: string;
  partition: number;
  offset: number;
  timestamp: string | null;
  ingestedAt: string;
  error: string;
  raw: string;
}

export interface DeadLetterReplay {
  selected: number;
  reingested: number;
  stillFailing: number;
  reasons: { error: string; count: number }[];
  /** re-ingested messages behind the watermark, run through the dedup now */
  replay: ReplayResult | null;
  /** re-ingested messages ahead of the watermark: the next slice of the daemon takes them */
  waitingForSlice: number;
}

const errorsOf = (p: PipelineConfig): string => qualified(objectNames(p).database, objectNames(p).errors);

/** Distinct dead letters, and those of them that never reached staging (not refused by the final table). */
export function deadLetterCountsSql(p: PipelineConfig): ParamSql {
  return {
    sql: `SELECT uniqExact(_topic, _partition, _offset) AS rows, uniqExactIf(_topic, _partition, _offset, NOT startsWith(__error, {refused:String})) AS unparsed FROM ${errorsOf(p)}`,
    params: { refused: REFUSED_BY_FINAL },
  };
}

export async function deadLetterCounts(db: Db, p: PipelineConfig): Promise<{ total: number; unparsed: number }> {
  const q = deadLetterCountsSql(p);
  const rows = await db.rows<{ rows: string; unparsed: string }>(q.sql, q.params);
  return { total: Number(rows[0]?.rows ?? 0), unparsed: Number(rows[0]?.unparsed ?? 0) };
}

/** The newest dead letters, one row per message. */
export function deadLetterListSql(p: PipelineConfig, limit: number): ParamSql {
  return {
    sql: `SELECT _topic AS topic, _partition AS partition, _offset AS offset, _timestamp_ms AS timestamp, _ingested_at AS ingested_at, __error AS error, _raw AS raw
       FROM ${errorsOf(p)} ORDER BY _ingested_at DESC, topic, partition, offset LIMIT 1 BY topic, partition, offset LIMIT {limit:UInt32}`,
    params: { limit },
  };
}

/** The reasons of the dead letters, most frequent first, with how many messages and the newest one's time. */
export function deadLetterReasonsSql(p: PipelineConfig, limit: number): ParamSql {
  return {
    sql: `SELECT __error AS error, uniqExact(_topic, _partition, _offset) AS count, toString(max(_ingested_at)) AS last
       FROM ${errorsOf(p)} GROUP BY error ORDER BY count DESC, last DESC, error LIMIT {limit:UInt32}`,
    params: { limit },
  };
}

export async function deadLetterReasons(
  db: Db,
  p: PipelineConfig,
  limit: number,
): Promise<{ error: string; count: number; last: string }[]> {
  const q = deadLetterReasonsSql(p, limit);
  const rows = await db.rows<{ error: string; count: string; last: string }>(q.sql, q.params);
  return rows.map((r) => ({ error: r.error, count: Number(r.count), last: r.last }));
}

/** An empty message (the Kafka engine skips it) the checker found in a gap of the offsets. */
export function emptyDeadLetterSql(
  p: PipelineConfig,
  topic: string,
  partition: number,
  offset: number,
  timestampMs: number,
): ParamSql {
  return {
    sql: `INSERT INTO ${errorsOf(p)} (_raw, __error, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
     VALUES ('', 'empty message (the Kafka engine skips it; recorded by the checker)', {t:String}, {p:UInt32}, {o:UInt64}, fromUnixTimestamp64Milli({ts:Int64}), now64(3))`,
    params: { t: topic, p: partition, o: offset, ts: timestampMs },
  };
}

export async function deadLetterEmpty(
  db: Db,
  p: PipelineConfig,
  topic: string,
  partition: number,
  offset: number,
  timestampMs: number,
): Promise<void> {
  const q = emptyDeadLetterSql(p, topic, partition, offset, timestampMs);
  await db.command(q.sql, q.params);
}

/** `(coordinates = ...) OR ...` for the chosen dead letters, or all of them. */
function selection(offsets: OffsetSpec[] | 'all', topics: string[]): ParamSql {
  if (offsets === 'all') return { sql: '1', params: {} };
  const params: Record<string, unknown> = {};
  const parts = offsets.map((o, i) => {
    params[`t${i}`] = o.topic ?? topics[0] ?? '';
    params[`p${i}`] = o.partition;
    params[`o${i}`] = o.offset;
    return `(_topic = {t${i}:String} AND _partition = {p${i}:UInt32} AND _offset = {o${i}:UInt64})`;
  });
  return { sql: parts.length > 0 ? parts.join(' OR ') : '0', params };
}

/**
 * The statements of a dead-letter replay over the chosen dead letters (all
 * share the parameters of `params`): refused ones (staged already), the
 * others' count, those that now pass validation, staging them, forgetting
 * them, and the reasons of those that still fail.
 */
export function replaySelectionSql(p: PipelineConfig, which: OffsetSpec[] | 'all') {
  const n = objectNames(p);
  const errors = errorsOf(p);
  const staging = qualified(n.database, n.staging);
  const picked = selection(which, p.source.topics);
  const params = { ...picked.params, refused: REFUSED_BY_FINAL };
  const source = `(SELECT _raw, _topic, _partition, _offset, _timestamp_ms FROM ${errors}
    WHERE (${picked.sql}) AND NOT startsWith(__error, {refused:String}) LIMIT 1 BY _topic, _partition, _offset)`;
  const validated = validatedSelect(p, source, "''");
  const cols = p.columns.map((c) => ident(c.name)).join(', ');
  return {
    params,
    refused: `SELECT DISTINCT _topic AS topic, _partition AS partition, _offset AS offset FROM (${refusedCoordinatesSql(p, picked.sql).sql})`,
    selected: `SELECT count() AS n FROM ${source}`,
    passing: `SELECT _topic AS topic, _partition AS partition, _offset AS offset FROM (${validated}) WHERE __error = ''`,
    stage: `INSERT INTO ${staging} (${cols}, \`__t\`, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       SELECT ${cols}, \`__t\`, _topic, _partition, _offset, _timestamp_ms, _ingested_at FROM (${validated}) WHERE __error = ''`,
    forget: `DELETE FROM ${errors} WHERE (_topic, _partition, _offset) IN (SELECT _topic, _partition, _offset FROM (${validated}) WHERE __error = '')`,
    reasons: `SELECT __error AS error, count() AS count FROM (${validated}) WHERE __error != '' GROUP BY error ORDER BY count DESC`,
  };
}

/** Forgets the refusals of these messages (replayed through the dedup). */
export function forgetRefusedSql(p: PipelineConfig, offsets: OffsetSpec[]): ParamSql {
  const done = selection(offsets, p.source.topics);
  return {
    sql: `DELETE FROM ${errorsOf(p)} WHERE (${done.sql}) AND startsWith(__error, {refused:String})`,
    params: { ...done.params, refused: REFUSED_BY_FINAL },
  };
}

export async function listDeadLetters(
  db: Db,
  p: PipelineConfig,
  limit: number,
): Promise<{ total: number; letters: DeadLetter[] }> {
  const list = deadLetterListSql(p, limit);
  const [counts, rows] = await Promise.all([
    deadLetterCounts(db, p),
    db.rows<{
      topic: string;
      partition: number;
      offset: string;
      timestamp: string | null;
      ingested_at: string;
      error: string;
      raw: string;
    }>(list.sql, list.params),
  ]);
  return {
    total: counts.total,
    letters: rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: Number(r.offset),
      timestamp: r.timestamp,
      ingestedAt: r.ingested_at,
      error: r.error,
      raw: r.raw,
    })),
  };
}

/** Kafka coordinates of one message. */
export interface Coordinates {
  topic: string;
  partition: number;
  offset: number;
}

/**
 * What a dead-letter replay will do, read before anything is written: the
 * chosen dead letters, those that now pass validation (to be staged again),
 * those the final table refused (staged already), the reasons of the rest, and
 * the replay that runs the re-ingested messages behind the watermark through
 * the dedup. A job stores it before re-ingesting, so a run resumed after the
 * re-ingest (the dead letters are forgotten by then) still replays them.
 */
export interface DeadLetterPlan {
  selected: number;
  passing: Coordinates[];
  refused: Coordinates[];
  stillFailing: number;
  reasons: { error: string; count: number }[];
  /** lowest to highest re-ingested offset per partition; null when nothing passes */
  replay: { from: OffsetSpec[]; to: OffsetSpec[] } | null;
}

type CoordinatesRow = { topic: string; partition: number; offset: string };
const coordinates = (r: CoordinatesRow): Coordinates => ({
  topic: r.topic,
  partition: r.partition,
  offset: Number(r.offset),
});

export async function planDeadLetterReplay(
  db: Db,
  p: PipelineConfig,
  which: OffsetSpec[] | 'all',
): Promise<DeadLetterPlan> {
  const q = replaySelectionSql(p, which);
  // Refused by the final table: staged already, so they are only run through the dedup again.
  const refused = (await db.rows<CoordinatesRow>(q.refused, q.params)).map(coordinates);
  const selected = Number((await db.rows<{ n: string }>(q.selected, q.params))[0]?.n ?? 0) + refused.length;
  const passing = (await db.rows<CoordinatesRow>(q.passing, q.params)).map(coordinates);
  const reasonRows = await db.rows<{ error: string; count: string }>(q.reasons, q.params);
  const reasons = reasonRows.map((r) => ({ error: r.error, count: Number(r.count) }));
  const rerun = [...passing, ...refused];
  let replay: DeadLetterPlan['replay'] = null;
  if (rerun.length > 0) {
    // Offsets already behind the watermark need a replay; later ones are sliced as usual.
    const lowest = new Map<string, OffsetSpec>();
    const highest = new Map<string, OffsetSpec>();
    for (const r of rerun) {
      const k = `${r.topic}/${r.partition}`;
      if (r.offset < (lowest.get(k)?.offset ?? Infinity)) lowest.set(k, { ...r });
      if (r.offset > (highest.get(k)?.offset ?? -1)) highest.set(k, { ...r });
    }
    replay = { from: [...lowest.values()], to: [...highest.values()] };
  }
  return { selected, passing, refused, stillFailing: reasons.reduce((s, r) => s + r.count, 0), reasons, replay };
}

/**
 * Stages the chosen dead letters that now pass validation, with their original
 * coordinates, and forgets them. Safe to repeat: what was forgotten is not
 * staged again, and coordinates staged twice count once.
 */
export async function reingestDeadLetters(db: Db, p: PipelineConfig, which: OffsetSpec[] | 'all'): Promise<void> {
  const q = replaySelectionSql(p, which);
  const passing = await db.rows<{ topic: string }>(q.passing, q.params);
  if (passing.length === 0) return;
  await db.command(
    q.stage,
    q.params,
    // Re-ingesting twice stages the same coordinates twice; the slice insert counts them once.
    UNTOKENED_INSERT_SELECT,
  );
  await db.command(q.forget, q.params, { mutations_sync: '2' });
}

/** Once replayed (a still refused row would have failed the replay), refused messages are rows now, or duplicates. */
export async function forgetReplayedRefusals(db: Db, p: PipelineConfig, refused: Coordinates[]): Promise<void> {
  if (refused.length === 0) return;
  const forget = forgetRefusedSql(p, refused);
  await db.command(forget.sql, forget.params, { mutations_sync: '2' });
}

/** The outcome of a dead-letter replay, from its plan and the replay of what it re-ingested. */
export function deadLetterOutcome(plan: DeadLetterPlan, replay: ReplayResult | null): DeadLetterReplay {
  const reingested = plan.passing.length + plan.refused.length;
  return {
    selected: plan.selected,
    reingested,
    waitingForSlice: Math.max(0, reingested - (replay?.rowsIn ?? 0)),
    stillFailing: plan.stillFailing,
    reasons: plan.reasons,
    replay,
  };
}

/** A dead-letter replay run in this process, start to end. */
export async function replayDeadLetters(
  db: Db,
  p: PipelineConfig,
  which: OffsetSpec[] | 'all',
  replayer: Replayer,
): Promise<DeadLetterReplay> {
  const plan = await planDeadLetterReplay(db, p, which);
  await reingestDeadLetters(db, p, which);
  const replay = plan.replay
    ? await replayer.run({
        from: { kind: 'offsets', offsets: plan.replay.from },
        to: { kind: 'offsets', offsets: plan.replay.to },
        reason: 'dead letters',
      })
    : null;
  await forgetReplayedRefusals(db, p, plan.refused);
  return deadLetterOutcome(plan, replay);
}
