/**
 * `winnow top`: one sample of a pipeline (its stats, who holds it and how it
 * fares), rates from the difference of two samples, and the frame a terminal
 * shows. The numbers are pipelineStats'; health is the lease holder's, and the
 * holding daemon's own state (/readyz) when its identity names its API.
 */
import type { Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError } from '../errors.ts';
import type { PartitionOffsets } from '../kafka/offsets.ts';
import { isCommandHolder, Lease } from '../slicing/lease.ts';
import { pipelineStats, type PipelineStats } from './stats.ts';

export interface Health {
  /** processing, standby, failing, starting (the daemon's own word), or 'no daemon' / 'command' from the lease */
  state: string;
  /** the failure, or who holds the pipeline */
  detail: string | null;
}

export interface TopSample {
  /** ms since the Unix epoch when the sample was read */
  at: number;
  stats: PipelineStats;
  health: Health;
  /** Kafka offsets could not be read (lag unknown) */
  kafkaError: string | null;
}

export interface TopRow {
  name: string;
  health: Health;
  /** per second since the previous sample; null on the first */
  inPerSec: number | null;
  insertedPerSec: number | null;
  duplicatesPerSec: number | null;
  duplicateRatio: number;
  waiting: number;
  /** summed over partitions; null when Kafka did not answer */
  lag: number | null;
  lastSlice: { ageMs: number | null; rows: number; durationMs: number } | null;
  deadLetters: number;
}

/** Rates are deltas of the counters over the time between the two samples. */
export function topRow(prev: TopSample | undefined, cur: TopSample): TopRow {
  const s = cur.stats;
  const dt = prev ? (cur.at - prev.at) / 1000 : 0;
  const rate = (f: (x: PipelineStats) => number): number | null =>
    prev && dt > 0 ? Math.max(0, f(s) - f(prev.stats)) / dt : null;
  const lags = s.partitions.map((p) => p.lag);
  const committed = s.lastSlice?.committedAt ? Date.parse(s.lastSlice.committedAt.replace(' ', 'T') + 'Z') : NaN;
  return {
    name: s.name,
    health: cur.health,
    inPerSec: rate((x) => x.messagesConsumed),
    insertedPerSec: rate((x) => x.inserted),
    duplicatesPerSec: rate((x) => x.duplicatesDropped),
    duplicateRatio: s.duplicateRatio,
    waiting: s.pendingRows,
    lag: lags.length > 0 && lags.every((l) => l !== null) ? lags.reduce<number>((a, l) => a + (l ?? 0), 0) : null,
    lastSlice: s.lastSlice
      ? {
          ageMs: Number.isFinite(committed) ? Math.max(0, cur.at - committed) : null,
          rows: s.lastSlice.rowsIn,
          durationMs: s.lastSlice.durationMs,
        }
      : null,
    deadLetters: s.deadLetters,
  };
}

const COLUMNS = ['PIPELINE', 'HEALTH', 'IN/s', 'INSERTED/s', 'DUP/s', 'DUP %', 'WAITING', 'LAG', 'DEAD', 'LAST SLICE'];

function num(x: number | null, digits = 1): string {
  return x === null ? '-' : x.toFixed(digits);
}

export function formatAge(ms: number | null): string {
  if (ms === null) return '?';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** The table of one refresh: a header line, a column header, a line per pipeline and one per problem. */
export function renderFrame(title: string, rows: TopRow[], notes: string[] = []): string {
  const cells = rows.map((r) => [
    r.name,
    r.health.state,
    num(r.inPerSec),
    num(r.insertedPerSec),
    num(r.duplicatesPerSec),
    `${(r.duplicateRatio * 100).toFixed(1)}%`,
    String(r.waiting),
    r.lag === null ? '-' : String(r.lag),
    String(r.deadLetters),
    r.lastSlice
      ? `${formatAge(r.lastSlice.ageMs)} ago, ${r.lastSlice.rows} rows, ${Math.round(r.lastSlice.durationMs)} ms`
      : 'none yet',
  ]);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  // Text left, numbers right, the last column as it is.
  const right = new Set([2, 3, 4, 5, 6, 7, 8]);
  const line = (row: string[]): string =>
    row
      .map((c, i) => (i === row.length - 1 ? c : right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const details = rows
    .filter((r) => r.health.detail !== null)
    .map((r) => `  ${r.name}: ${r.health.state === 'failing' ? 'failing: ' : ''}${r.health.detail}`);
  return [title, '', line(COLUMNS), ...cells.map(line), '', ...details, ...notes].join('\n').trimEnd() + '\n';
}

interface ReadyzBody {
  pipelines?: Record<string, { state: string; error: { class: string; message: string } | null }>;
}

/** The daemon's state from its /readyz, when the holder's identity names its API; else what the lease says. */
export async function pipelineHealth(db: Db, p: PipelineConfig): Promise<Health> {
  const { holder } = await new Lease(db, p.sink.database, p.name, { role: 'command' }).peek();
  if (holder === null) return { state: 'no daemon', detail: null };
  if (isCommandHolder(holder)) return { state: 'command', detail: `held by a command: ${holder}` };
  const api = /(?:^| )api=(\S+)/.exec(holder)?.[1];
  if (api) {
    try {
      const res = await fetch(`${api}/readyz`, { signal: AbortSignal.timeout(800) });
      const body = (await res.json()) as ReadyzBody;
      const h = body.pipelines?.[p.name];
      if (h) {
        const detail = h.error ? `${h.error.class}: ${h.error.message}` : null;
        return { state: h.state, detail: h.state === 'failing' ? detail : null };
      }
    } catch (err) {
      return { state: 'processing', detail: `holder's API ${api} did not answer (${describeError(err)})` };
    }
  }
  return { state: 'processing', detail: null };
}

export async function topSample(
  db: Db,
  p: PipelineConfig,
  offsets: () => Promise<PartitionOffsets[]>,
): Promise<TopSample> {
  let kafkaError: string | null = null;
  const kafka = await offsets().catch((err: unknown) => {
    kafkaError = describeError(err);
    return undefined;
  });
  const [stats, health] = await Promise.all([pipelineStats(db, p, kafka), pipelineHealth(db, p)]);
  return { at: Date.now(), stats, health, kafkaError };
}
