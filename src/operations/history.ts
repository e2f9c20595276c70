/**
 * A pipeline's last minutes, one bucket per minute, from winnow's own tables:
 * what the committed slices counted (winnow_slices, by commit time) and what
 * arrived (staging and the dead letters that never reached it, by ingestion
 * time). The rows waiting at the end of each minute are derived from the
 * rows waiting now, walking back: a minute's arrivals were not waiting before
 * it, its processed rows were. The web page's charts read this.
 */
import type { Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames, SLICES_TABLE } from '../provisioning/objects.ts';
import { REFUSED_BY_FINAL } from '../slicing/rejections.ts';

export const HISTORY_MINUTES_MAX = 1440;

export interface HistoryBucket {
  /** start of the minute, milliseconds since the epoch (UTC) */
  minute: number;
  /** messages that arrived: staged, plus dead letters that never reached staging */
  arrived: number;
  /** staged rows the committed slices read */
  processed: number;
  inserted: number;
  duplicates: number;
  /** messages the final table refused (now dead letters) */
  refused: number;
  /** dead letters that arrived (unparsable, invalid, ...) */
  deadLetters: number;
  slices: number;
  /** the longest slice committed in the minute, 0 when none */
  maxSliceMs: number;
  /** staged rows not yet in a committed slice at the end of the minute */
  waiting: number;
}

export interface PipelineHistory {
  name: string;
  minutes: number;
  /** oldest first, one per minute, the current minute last */
  buckets: HistoryBucket[];
}

/** The minute buckets: `FROM` the first of `minutes` buckets `TO` after the current one, in unix seconds. */
const fill = (minutes: string): string =>
  `WITH FILL FROM toUnixTimestamp(toStartOfMinute(now('UTC'))) - 60 * (${minutes} - 1) TO toUnixTimestamp(toStartOfMinute(now('UTC'))) + 60 STEP 60`;
const since = (column: string, minutes: string): string =>
  `${column} >= toStartOfMinute(now('UTC')) - toIntervalMinute(${minutes} - 1)`;

export const historySql = {
  /** Per minute, what the committed slices counted. */
  slices(database: string, pipeline: string, minutes: number): ParamSql {
    return {
      sql: `SELECT toUnixTimestamp(toStartOfMinute(assumeNotNull(committed_at))) AS minute,
         sum(rows_in) AS processed, sum(inserted) AS inserted, sum(duplicates) AS duplicates,
         sum(rejected) AS refused, count() AS slices, max(duration_ms) AS max_ms
       FROM ${qualified(database, SLICES_TABLE)}
       WHERE pipeline = {p:String} AND status = 'committed' AND ${since('committed_at', '{m:UInt32}')}
       GROUP BY minute ORDER BY minute ${fill('{m:UInt32}')}`,
      params: { p: pipeline, m: minutes },
    };
  },

  /** Per minute, the messages staged and the dead letters that never reached staging. */
  arrivals(p: PipelineConfig, minutes: number): ParamSql {
    const n = objectNames(p);
    return {
      sql: `SELECT minute, sum(staged) AS staged, sum(dead) AS dead FROM (
         SELECT toUnixTimestamp(toStartOfMinute(_ingested_at)) AS minute, uniqExact(_topic, _partition, _offset) AS staged, 0 AS dead
         FROM ${qualified(n.database, n.staging)} WHERE ${since('_ingested_at', '{m:UInt32}')} GROUP BY minute
         UNION ALL
         SELECT toUnixTimestamp(toStartOfMinute(_ingested_at)) AS minute, 0 AS staged, uniqExact(_topic, _partition, _offset) AS dead
         FROM ${qualified(n.database, n.errors)} WHERE ${since('_ingested_at', '{m:UInt32}')} AND NOT startsWith(__error, {refused:String})
         GROUP BY minute
       ) GROUP BY minute ORDER BY minute ${fill('{m:UInt32}')}`,
      params: { m: minutes, refused: REFUSED_BY_FINAL },
    };
  },
};

interface SliceRow {
  minute: number;
  processed: string;
  inserted: string;
  duplicates: string;
  refused: string;
  slices: string;
  max_ms: number;
}
interface ArrivalRow {
  minute: number;
  staged: string;
  dead: string;
}

/**
 * The buckets of the last `minutes` minutes. `waitingNow` is the pipeline's
 * rows waiting now (stats' pendingRows): the waiting rows at the end of each
 * earlier minute follow from it and the later minutes' arrivals and slices.
 */
export async function pipelineHistory(
  db: Db,
  p: PipelineConfig,
  minutes: number,
  waitingNow: number,
): Promise<PipelineHistory> {
  const s = historySql.slices(p.sink.database, p.name, minutes);
  const a = historySql.arrivals(p, minutes);
  const [slices, arrivals] = await Promise.all([
    db.rows<SliceRow>(s.sql, s.params),
    db.rows<ArrivalRow>(a.sql, a.params),
  ]);
  const bySlices = new Map(slices.map((r) => [Number(r.minute), r]));
  const byArrivals = new Map(arrivals.map((r) => [Number(r.minute), r]));
  // Both queries fill the same minutes; ClickHouse's clock may tick between them, so take the union.
  const all = [...new Set([...bySlices.keys(), ...byArrivals.keys()])].sort((x, y) => x - y).slice(-minutes);
  const staged = all.map((minute) => Number(byArrivals.get(minute)?.staged ?? 0));
  const buckets: HistoryBucket[] = all.map((minute, i) => {
    const sl = bySlices.get(minute);
    const ar = byArrivals.get(minute);
    const dead = Number(ar?.dead ?? 0);
    return {
      minute: minute * 1000,
      arrived: staged[i]! + dead,
      processed: Number(sl?.processed ?? 0),
      inserted: Number(sl?.inserted ?? 0),
      duplicates: Number(sl?.duplicates ?? 0),
      refused: Number(sl?.refused ?? 0),
      deadLetters: dead + Number(sl?.refused ?? 0),
      slices: Number(sl?.slices ?? 0),
      maxSliceMs: Number(sl?.max_ms ?? 0),
      waiting: 0,
    };
  });
  // Walking back from now: before a minute, its staged rows had not arrived and its processed rows were waiting.
  let waiting = waitingNow;
  for (let i = buckets.length - 1; i >= 0; i--) {
    const b = buckets[i]!;
    b.waiting = Math.max(0, waiting);
    waiting = waiting - staged[i]! + b.processed;
  }
  return { name: p.name, minutes, buckets };
}
