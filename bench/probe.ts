/**
 * Instruments a winnow Db: times every statement the Processor sends, keeps
 * the X-ClickHouse-Summary of the slice insert (rows, memory), and can add
 * settings to the slice insert (a lever under test). Also process CPU and
 * memory readings from /proc.
 *
 * Statements are told apart by the tag winnow gives each statement of a slice
 * (the `log_comment` setting, which system.query_log records: SLICE_TAGS,
 * CHECKPOINT_TAGS), read as the statement is sent, never by their SQL text.
 */
import { readFile } from 'node:fs/promises';
import type { ClickHouseSettings } from '@clickhouse/client';
import type { Db, QuerySummary } from '../src/clickhouse/client.ts';
import { CHECKPOINT_TAGS } from '../src/slicing/checkpoints.ts';
import { SLICE_TAGS } from '../src/slicing/slice.ts';

export type QueryKind = 'insert' | 'checkpoint' | 'plan' | 'count' | 'other';

export interface QueryStat {
  kind: QueryKind;
  /** the statement's log_comment tag ('' when untagged) */
  tag: string;
  ms: number;
  summary?: QuerySummary;
}

const KIND_BY_TAG = new Map<string, QueryKind>([
  [SLICE_TAGS.insert, 'insert'],
  [SLICE_TAGS.countStaged, 'count'],
  [SLICE_TAGS.countKept, 'count'],
  [SLICE_TAGS.heads, 'plan'],
  [CHECKPOINT_TAGS.read, 'plan'],
  [CHECKPOINT_TAGS.write, 'checkpoint'],
]);

/** The kind of a statement, by its tag; untagged statements (the refused-row search, say) are 'other'. */
export function kindOf(settings: ClickHouseSettings | undefined): QueryKind {
  const tag = settings?.log_comment;
  return (tag !== undefined && KIND_BY_TAG.get(tag)) || 'other';
}

export function instrument(db: Db, insertSettings: Record<string, string>, onQuery: (s: QueryStat) => void): Db {
  return {
    url: db.url,
    async command(sql, params, settings) {
      const kind = kindOf(settings);
      const merged: ClickHouseSettings =
        kind === 'insert' ? { ...settings, ...(insertSettings as ClickHouseSettings) } : (settings ?? {});
      const t0 = performance.now();
      const summary = await db.command(sql, params, merged);
      onQuery({ kind, tag: settings?.log_comment ?? '', ms: performance.now() - t0, summary });
      return summary;
    },
    async rows<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings) {
      const t0 = performance.now();
      const out = await db.rows<T>(sql, params, settings);
      onQuery({ kind: kindOf(settings), tag: settings?.log_comment ?? '', ms: performance.now() - t0 });
      return out;
    },
    ping: () => db.ping(),
    close: () => db.close(),
  };
}

/** CPU seconds (user + system) a process has used so far; 0 when it is gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime is the 14th field, stime the 15th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return 0;
  }
}

/** Resident and peak resident memory of a process, in bytes (0 when unknown). */
export async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: 0, peak: 0 };
  }
}

/** CPU seconds of a set of processes between start() and stop(). */
export class CpuMeter {
  private start = new Map<number, number>();
  constructor(private readonly pids: () => number[]) {}
  async begin(): Promise<void> {
    this.start = new Map(await Promise.all(this.pids().map(async (p) => [p, await cpuSeconds(p)] as const)));
  }
  async seconds(extra: number[] = []): Promise<number> {
    let total = 0;
    for (const p of new Set([...this.pids(), ...extra])) total += (await cpuSeconds(p)) - (this.start.get(p) ?? 0);
    return total;
  }
}

/** Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat. */
export async function machineBusySeconds(): Promise<number> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return (total - (f[3] ?? 0) - (f[4] ?? 0)) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process and its children that have exited (cutime, cstime). */
export async function selfTreeSeconds(): Promise<number> {
  try {
    const stat = await readFile('/proc/self/stat', 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of the whole machine (`busy`) and of this benchmark: its own process tree, ClickHouse and Kafka (`own`). */
export async function benchCpu(pids: { clickhouse: number; kafka: number }): Promise<{ busy: number; own: number }> {
  const [busy, self, ch, kafka] = await Promise.all([
    machineBusySeconds(),
    selfTreeSeconds(),
    cpuSeconds(pids.clickhouse),
    cpuSeconds(pids.kafka),
  ]);
  return { busy, own: self + ch + kafka };
}
