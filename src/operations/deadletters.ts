/**
 * Dead letters: messages that could not become a row, kept with the reason.
 * Once the cause is fixed (a column made optional, a type widened), `replay`
 * runs them through the same validation again: those that pass go to staging
 * with their original Kafka coordinates and through the dedup, and leave the
 * dead letters; the others stay, with their new reason. Messages the final
 * table refused (rejections.ts) are staged already: once its cause is fixed
 * they are only run through the dedup again, and leave the dead letters.
 */
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified } from '../clickhouse/sql.ts';
import { UNTOKENED_INSERT_SELECT } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames, validatedSelect } from '../provisioning/objects.ts';
import { REFUSED_BY_FINAL } from '../slicing/rejections.ts';
import { Replayer, type OffsetSpec, type ReplayResult } from './replay.ts';

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

function selection(offsets: OffsetSpec[] | 'all', topics: string[]): { sql: string; params: Record<string, unknown> } {
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

export async function listDeadLetters(db: Db, p: PipelineConfig, limit: number): Promise<{ total: number; letters: DeadLetter[] }> {
  const n = objectNames(p);
  const errors = qualified(n.database, n.errors);
  const [total, rows] = await Promise.all([
    db.rows<{ n: string }>(`SELECT uniqExact(_topic, _partition, _offset) AS n FROM ${errors}`),
    db.rows<{ topic: string; partition: number; offset: string; timestamp: string | null; ingested_at: string; error: string; raw: string }>(
      `SELECT _topic AS topic, _partition AS partition, _offset AS offset, _timestamp_ms AS timestamp, _ingested_at AS ingested_at, __error AS error, _raw AS raw
       FROM ${errors} ORDER BY _ingested_at DESC, topic, partition, offset LIMIT 1 BY topic, partition, offset LIMIT {limit:UInt32}`,
      { limit },
    ),
  ]);
  return {
    total: Number(total[0]?.n ?? 0),
    letters: rows.map((r) => ({ topic: r.topic, partition: r.partition, offset: Number(r.offset), timestamp: r.timestamp, ingestedAt: r.ingested_at, error: r.error, raw: r.raw })),
  };
}

export async function replayDeadLetters(
  db: Db,
  p: PipelineConfig,
  which: OffsetSpec[] | 'all',
  replayer: Replayer,
): Promise<DeadLetterReplay> {
  const n = objectNames(p);
  const errors = qualified(n.database, n.errors);
  const staging = qualified(n.database, n.staging);
  const picked = selection(which, p.source.topics);
  const sel = { sql: picked.sql, params: { ...picked.params, refused: REFUSED_BY_FINAL } };
  // Refused by the final table: staged already, so they are only run through the dedup again.
  const refused = await db.rows<{ topic: string; partition: number; offset: string }>(
    `SELECT DISTINCT _topic AS topic, _partition AS partition, _offset AS offset FROM ${errors} WHERE (${sel.sql}) AND startsWith(__error, {refused:String})`,
    sel.params,
  );
  const source = `(SELECT _raw, _topic, _partition, _offset, _timestamp_ms FROM ${errors}
    WHERE (${sel.sql}) AND NOT startsWith(__error, {refused:String}) LIMIT 1 BY _topic, _partition, _offset)`;
  const validated = validatedSelect(p, source, "''");
  const cols = p.columns.map((c) => ident(c.name)).join(', ');
  const selected = Number((await db.rows<{ n: string }>(`SELECT count() AS n FROM ${source}`, sel.params))[0]?.n ?? 0) + refused.length;
  const passing = await db.rows<{ topic: string; partition: number; offset: string }>(
    `SELECT _topic AS topic, _partition AS partition, _offset AS offset FROM (${validated}) WHERE __error = ''`,
    sel.params,
  );
  if (passing.length > 0) {
    await db.command(
      `INSERT INTO ${staging} (${cols}, \`__t\`, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       SELECT ${cols}, \`__t\`, _topic, _partition, _offset, _timestamp_ms, _ingested_at FROM (${validated}) WHERE __error = ''`,
      sel.params,
      // Re-ingesting twice stages the same coordinates twice; the slice insert counts them once.
      UNTOKENED_INSERT_SELECT,
    );
    await db.command(
      `DELETE FROM ${errors} WHERE (_topic, _partition, _offset) IN (SELECT _topic, _partition, _offset FROM (${validated}) WHERE __error = '')`,
      sel.params,
      { mutations_sync: '2' },
    );
  }
  const reasons = await db.rows<{ error: string; count: string }>(
    `SELECT __error AS error, count() AS count FROM (${validated}) WHERE __error != '' GROUP BY error ORDER BY count DESC`,
    sel.params,
  );
  let replay: ReplayResult | null = null;
  const rerun = [...passing, ...refused];
  if (rerun.length > 0) {
    // Offsets already behind the watermark need a replay; later ones are sliced as usual.
    const lowest = new Map<string, OffsetSpec>();
    const highest = new Map<string, OffsetSpec>();
    for (const r of rerun) {
      const k = `${r.topic}/${r.partition}`;
      const o = Number(r.offset);
      if (o < (lowest.get(k)?.offset ?? Infinity)) lowest.set(k, { topic: r.topic, partition: r.partition, offset: o });
      if (o > (highest.get(k)?.offset ?? -1)) highest.set(k, { topic: r.topic, partition: r.partition, offset: o });
    }
    replay = await replayer.run({
      from: { kind: 'offsets', offsets: [...lowest.values()] },
      to: { kind: 'offsets', offsets: [...highest.values()] },
      reason: 'dead letters',
    });
  }
  if (refused.length > 0) {
    // The replay went through (a still refused row would have failed it): they are rows now, or duplicates.
    const done = selection(
      refused.map((r) => ({ topic: r.topic, partition: r.partition, offset: Number(r.offset) })),
      p.source.topics,
    );
    await db.command(
      `DELETE FROM ${errors} WHERE (${done.sql}) AND startsWith(__error, {refused:String})`,
      { ...done.params, refused: REFUSED_BY_FINAL },
      { mutations_sync: '2' },
    );
  }
  const replayed = replay?.rowsIn ?? 0;
  return {
    selected,
    reingested: passing.length + refused.length,
    waitingForSlice: Math.max(0, passing.length + refused.length - replayed),
    stillFailing: reasons.reduce((s, r) => s + Number(r.count), 0),
    reasons: reasons.map((r) => ({ error: r.error, count: Number(r.count) })),
    replay,
  };
}
