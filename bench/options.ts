/** The benchmark's flags, their defaults (full and --quick) and --help. */
import { parseArgs } from 'node:util';
import type { Levers } from './pipeline.ts';

export const SCENARIOS = ['drain', 'rmt', 'handwritten', 'latency', 'live', 'state', 'check', 'levers'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface Options {
  quick: boolean;
  events: number;
  dupRatio: number;
  windowMs: number;
  partitions: number;
  latencyRate: number;
  latencySeconds: number;
  liveRates: number[];
  liveProbeSeconds: number;
  liveSeconds: number;
  stateSizes: number[];
  sliceRows: number;
  dedupSeen: number;
  dedupRows: number;
  /** dedup.index of the state phase's pipeline */
  index: 'scan' | 'rocksdb';
  /** state phase: consecutive slices run after the last size (0: none) */
  stateSlices: number;
  /** state phase: optimize_for_bulk_insert of the seen-key index for those slices (undefined: as created) */
  indexBulkInsert: 0 | 1 | undefined;
  /** state phase: events/s offered to the filled pipeline through Kafka, with the controller running (0: off) */
  stateLiveRate: number;
  stateLiveSeconds: number;
  /** state phase, dedup.index rocksdb: how the index is filled (state-fill.ts) */
  indexFill: 'optimize' | 'sorted' | 'memtable' | 'rebuild';
  /** state phase: free disk the fill leaves, GB (it fills less when the disk would not hold more) */
  stateKeepFreeGb: number;
  /** state phase: GiB another process holds while each size is measured (0: none) */
  stateHoldGb: number;
  mapKeys: number[];
  leversSeen: number;
  /** names of the levers layouts to run (substrings, any case); empty: all */
  leversLayouts: string[];
  checkSizes: number[];
  checkFullMax: number;
  checkTraffic: number;
  levers: Levers;
  only: Scenario[];
  keep: boolean;
  out: string | undefined;
}

const M = 1_000_000;

export const HELP = `Usage: npm run bench -- [options]

Runs winnow and two baselines on their own embedded ClickHouse and Kafka
(free ports, temporary directory, stopped at the end) with a generated load of
user sign-up events (~340 bytes of JSON, a share of duplicates), prints a table
and writes bench/results/<time>.json. See bench/README.md.

Load:
  --quick                 small sizes; the whole run takes under 2 minutes
  --events N              events pre-loaded for the drain phases       (default 2000000; quick 200000)
  --dup-ratio X           share of messages that are duplicates, 0..0.9 (default 0.1)
  --window DURATION_MS    dedup window, ms                             (default 3600000 = 1h)
  --partitions N          partitions of each topic                     (default 3)
Phases:
  --only LIST             comma-separated subset of ${SCENARIOS.join(',')}
                          (default: all but levers)
  --latency-rate N        offered events/s of the latency phase        (default 20000)
  --latency-seconds S     length of the latency phase                  (default 30; quick 10)
  --live-rates LIST       offered rates the live phase steps through   (default 25000,50000,60000,75000,100000;
                                                                        quick 10000,25000,50000)
  --live-probe-seconds S  length of each step                          (default 15; quick 4)
  --live-seconds S        how long the best step must then be sustained (default 120; quick 20)
  --state-sizes LIST      seen keys the per-slice cost is measured at  (default 1000000,10000000,100000000;
                                                                        quick 1000000,5000000); 1000000000 is opt-in
                          (with --index rocksdb about 30 minutes of filling and 55 GB of disk; the fill
                          stops short, logged, where it would leave under 12 GB free; with --window 604800000
                          (7 days) the keys spread over 7 days)
  --slice-rows N          rows of each measured slice                  (default 100000)
  --dedup-seen N          seen keys for the dedup-stage throughput     (default 20000000; quick 5000000)
  --dedup-rows N          staged rows the dedup stage turns into final rows (default 2000000; quick 300000)
  --index scan|rocksdb    dedup.index of the state phase's pipeline    (default scan); rocksdb also fills the
                          seen-key index beside the seen keys (--index-fill)
  --state-slices N        after the last state size, N consecutive slices of --slice-rows rows (default 0: none);
                          logs insert and tick times and, with rocksdb, the index's files every 10 slices
  --index-bulk-insert 0|1 optimize_for_bulk_insert of the seen-key index for those slices (default: as created, 1)
  --state-live-rate N     then offer N events/s through Kafka to the same pipeline, controller running (default 0:
                          off); reports whether it kept up, p99 produce -> visible, controller RSS, CH memory
  --state-live-seconds S  how long (default 120)
  --index-fill optimize|sorted|memtable|rebuild  how the state phase fills the seen-key index (default optimize: one
                          bulk insert, then OPTIMIZE, which needs the index's size again on disk; sorted: passes
                          sorted by the stored key, ingested without overlap at the bottom level, no OPTIMIZE, files
                          without bloom filters; memtable: the same passes written through RocksDB's memtable
                          (optimize_for_bulk_insert = 0): files with the server's bloom filter, no OPTIMIZE (~1M keys/s:
                          1B in 18 min); both for 1000000000; rebuild: after each size, as winnow index
                          rebuild does, logging its time, keys/s, bytes/entry, ClickHouse peak memory, its
                          compaction and verification, and a 100k-key lookup before and after the compaction)
  --state-keep-free-gb N  the state fill stops short (logged) where it would leave less free disk (default 12)
  --state-hold-gb N       while each size is measured (not filled), a child process holds N GiB of memory, so the
                          page cache is that much smaller: a state larger than the RAM at a size that fills fast
                          (default 0; refused where it would leave under 3 GiB available)
  --map-keys LIST         keys the hand-written consumer's Map is measured at (default 1200000,12000000;
                          quick 1200000) - 1 min and 10 min of a 1h window at 20k events/s
  --check-sizes LIST      final rows the consistency check's cost is measured at (default 1000000,10000000;
                          quick 500000); 100000000 is opt-in (about 15 minutes of filling on 2 cores)
  --check-full-max N      largest size that also gets a full check      (default 10000000)
  --check-traffic N       rows processed between two checks             (default 600000 = 1 min at 10k/s; quick 100000)
  --levers-seen N         seen keys of the lever comparison (--only levers) (default 20000000; quick 2000000)
  --levers-layouts LIST   only the layouts whose names contain one of these comma-separated words, e.g. rocksdb
                          (default: all)
Levers (winnow settings under test; default: winnow's own):
  --max-slice-rows N      schedule.maxSliceRows                        (default 1000000)
  --tick-ms N             controller tick: wait when nothing is staged (default 1000)
  --consumers N           source.consumers (kafka_num_consumers)       (default 1)
  --queue K=V,...         extra SETTINGS of the Kafka queue, e.g. kafka_flush_interval_ms=500
  --seen K=V,...          extra SETTINGS of the seen-keys table, e.g. index_granularity=256
  --insert K=V,...        extra settings of the slice insert, e.g. use_index_for_in_with_subqueries=0
Output:
  --out FILE              JSON result path                             (default bench/results/<time>.json)
  --keep                  keep the servers' data directory
  --help                  this text`;

function num(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v.replaceAll('_', ''));
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name}: expected a number >= ${min}, got "${v}"`);
  return n;
}

function list(name: string, v: string | undefined, dflt: number[]): number[] {
  if (v === undefined) return dflt;
  return v.split(',').map((x) => num(name, x.trim(), 0, 1));
}

function settings(name: string, v: string | undefined): Record<string, string> {
  if (v === undefined || v === '') return {};
  const out: Record<string, string> = {};
  for (const pair of v.split(',')) {
    const m = /^\s*([a-z_][a-z0-9_]*)\s*=\s*([A-Za-z0-9_.'-]+)\s*$/i.exec(pair);
    if (!m?.[1] || m[2] === undefined) throw new Error(`--${name}: expected name=value[,name=value...], got "${pair}"`);
    out[m[1]] = m[2];
  }
  return out;
}

function indexOf(v: string | undefined): 'scan' | 'rocksdb' {
  if (v === undefined || v === 'scan' || v === 'rocksdb') return v ?? 'scan';
  throw new Error(`--index: expected scan or rocksdb, got "${v}"`);
}

function fillOf(v: string | undefined): 'optimize' | 'sorted' | 'memtable' | 'rebuild' {
  if (v === undefined || v === 'optimize' || v === 'sorted' || v === 'memtable' || v === 'rebuild')
    return v ?? 'optimize';
  throw new Error(`--index-fill: expected optimize, sorted, memtable or rebuild, got "${v}"`);
}

function bulkOf(v: string | undefined): 0 | 1 | undefined {
  if (v === undefined) return undefined;
  if (v === '0' || v === '1') return Number(v) as 0 | 1;
  throw new Error(`--index-bulk-insert: expected 0 or 1, got "${v}"`);
}

export function parseOptions(argv: string[]): Options | 'help' {
  const s = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      events: s,
      'dup-ratio': s,
      window: s,
      partitions: s,
      only: s,
      'latency-rate': s,
      'latency-seconds': s,
      'live-rates': s,
      'live-probe-seconds': s,
      'live-seconds': s,
      'state-sizes': s,
      'slice-rows': s,
      'dedup-seen': s,
      'dedup-rows': s,
      index: s,
      'state-slices': s,
      'index-bulk-insert': s,
      'state-live-rate': s,
      'state-live-seconds': s,
      'index-fill': s,
      'state-keep-free-gb': s,
      'state-hold-gb': s,
      'map-keys': s,
      'levers-seen': s,
      'levers-layouts': s,
      'check-sizes': s,
      'check-full-max': s,
      'check-traffic': s,
      'max-slice-rows': s,
      'tick-ms': s,
      consumers: s,
      queue: s,
      seen: s,
      insert: s,
      out: s,
    },
  });
  if (values.help) return 'help';
  const q = values.quick;
  const only = (values.only ?? SCENARIOS.filter((x) => x !== 'levers').join(',')).split(',').map((x) => x.trim());
  for (const o of only)
    if (!(SCENARIOS as readonly string[]).includes(o))
      throw new Error(`--only: unknown phase "${o}"; expected some of ${SCENARIOS.join(',')}`);
  if (values['index-bulk-insert'] !== undefined && values.index !== 'rocksdb')
    throw new Error('--index-bulk-insert: needs --index rocksdb');
  if (values['index-fill'] !== undefined && values.index !== 'rocksdb')
    throw new Error('--index-fill: needs --index rocksdb');
  const dupRatio = num('dup-ratio', values['dup-ratio'], 0.1);
  if (dupRatio > 0.9) throw new Error('--dup-ratio: at most 0.9');
  return {
    quick: q,
    events: num('events', values.events, q ? 200_000 : 2 * M, 1),
    dupRatio,
    windowMs: num('window', values.window, 3_600_000, 1_000),
    partitions: num('partitions', values.partitions, 3, 1),
    latencyRate: num('latency-rate', values['latency-rate'], 20_000, 1),
    latencySeconds: num('latency-seconds', values['latency-seconds'], q ? 10 : 30, 1),
    liveRates: list(
      'live-rates',
      values['live-rates'],
      q ? [10_000, 25_000, 50_000] : [25_000, 50_000, 60_000, 75_000, 100_000],
    ).sort((a, b) => a - b),
    liveProbeSeconds: num('live-probe-seconds', values['live-probe-seconds'], q ? 4 : 15, 1),
    liveSeconds: num('live-seconds', values['live-seconds'], q ? 20 : 120, 1),
    stateSizes: list('state-sizes', values['state-sizes'], q ? [M, 5 * M] : [M, 10 * M, 100 * M]).sort((a, b) => a - b),
    sliceRows: num('slice-rows', values['slice-rows'], 100_000, 3),
    dedupSeen: num('dedup-seen', values['dedup-seen'], q ? 5 * M : 20 * M, 0),
    dedupRows: num('dedup-rows', values['dedup-rows'], q ? 300_000 : 2 * M, 3),
    index: indexOf(values.index),
    stateSlices: num('state-slices', values['state-slices'], 0, 0),
    indexBulkInsert: bulkOf(values['index-bulk-insert']),
    stateLiveRate: num('state-live-rate', values['state-live-rate'], 0, 0),
    stateLiveSeconds: num('state-live-seconds', values['state-live-seconds'], 120, 1),
    indexFill: fillOf(values['index-fill']),
    stateKeepFreeGb: num('state-keep-free-gb', values['state-keep-free-gb'], 12, 0),
    stateHoldGb: num('state-hold-gb', values['state-hold-gb'], 0, 0),
    mapKeys: list('map-keys', values['map-keys'], q ? [1_200_000] : [1_200_000, 12_000_000]),
    leversSeen: num('levers-seen', values['levers-seen'], q ? 2 * M : 20 * M, 1),
    leversLayouts: (values['levers-layouts'] ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== ''),
    checkSizes: list('check-sizes', values['check-sizes'], q ? [500_000] : [M, 10 * M]).sort((a, b) => a - b),
    checkFullMax: num('check-full-max', values['check-full-max'], 10 * M, 0),
    checkTraffic: num('check-traffic', values['check-traffic'], q ? 100_000 : 600_000, 3),
    levers: {
      queue: settings('queue', values.queue),
      seen: settings('seen', values.seen),
      insert: settings('insert', values.insert),
      maxSliceRows: num('max-slice-rows', values['max-slice-rows'], 1_000_000, 1),
      tickMs: num('tick-ms', values['tick-ms'], 1_000, 10),
      consumers: num('consumers', values.consumers, 1, 1),
    },
    only: only as Scenario[],
    keep: values.keep,
    out: values.out,
  };
}
