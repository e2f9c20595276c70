/**
 * The result document (written as JSON) and its printed table, ratios and targets.
 *
 * Why one file over 300 lines: the result document's type, its printed table and the targets are read together.
 */
import type { Options } from './options.ts';
import type { DrainResult } from './scenarios/drain.ts';
import type { HandwrittenResult } from './scenarios/handwritten.ts';
import type { LatencyResult } from './scenarios/latency.ts';
import type { LeversResult } from './scenarios/levers.ts';
import type { LiveResult, LiveStep } from './scenarios/live.ts';
import type { Preloaded } from './scenarios/preload.ts';
import type { RmtResult } from './scenarios/rmt.ts';
import type { StateResult } from './scenarios/state.ts';
import type { CheckResult } from './scenarios/check.ts';
import { fmtInt } from './context.ts';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  os: string;
  node: string;
  clickhouse: string;
  kafka: string;
  kafkajs: string;
  clickhouseClient: string;
  commit: string;
}

export interface Target {
  name: string;
  goal: string;
  measured: string;
  met: boolean | undefined;
  note?: string;
}

export interface BenchResult {
  startedAt: string;
  seconds: number;
  machine: Machine;
  options: Options;
  preload?: Preloaded;
  drain?: DrainResult;
  rmt?: RmtResult;
  handwritten?: HandwrittenResult;
  latency?: LatencyResult;
  live?: LiveResult;
  streamDaemonPeakRss?: number;
  clickhousePeakRss?: number;
  state?: StateResult;
  check?: CheckResult;
  levers?: LeversResult;
  /** per phase: the share of the machine's CPU other processes used meanwhile */
  phases: { name: string; seconds: number; foreignCpuShare: number }[];
  failures: { phase: string; error: string }[];
  targets: Target[];
}

const MB = 1e6;
const mb = (b: number | undefined): string =>
  b === undefined || !Number.isFinite(b) ? '-' : `${(b / MB).toFixed(0)} MB`;
const rate = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : `${fmtInt(x)}/s`);
const ms = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '-' : `${fmtInt(x)} ms`);
const ratio = (a: number | undefined, b: number | undefined): string =>
  a && b && Number.isFinite(a / b) ? `${(a / b).toFixed(1)}x` : '-';

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 10) : c.padStart(widths[i] ?? 10))).join('  ');
}

function table(title: string, header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = '-'.repeat(widths.reduce((a, w) => a + w + 2, -2));
  return ['', title, rule, row(header, widths), rule, ...rows.map((r) => row(r, widths)), rule];
}

export function stepStatus(s: LiveStep): string {
  if (s.held) return 'held';
  return `${s.keptUp ? 'kept up' : 'fell behind'}${s.generatorLimited ? ', generator-limited' : ''}`;
}

export function evaluateTargets(r: BenchResult): Target[] {
  const t: Target[] = [];
  const o = r.options;
  const d = r.drain;
  t.push({
    name: 'drain throughput',
    goal: '>= 100,000 events/s over 2M events',
    measured: d ? `${rate(d.eventsPerSecond)} over ${fmtInt(d.events)}` : 'not run',
    met: d ? d.eventsPerSecond >= 100_000 : undefined,
    ...(d && d.events < 2_000_000 ? { note: 'fewer events than the target names' } : {}),
  });
  const l = r.live;
  t.push({
    name: 'live throughput',
    goal: '>= 50,000 events/s sustained 2 min',
    measured: l ? `${rate(l.maxSustainedRate)} offered and held for ${o.liveSeconds} s` : 'not run',
    met: l ? l.maxSustainedRate >= 50_000 : undefined,
    ...(l && o.liveSeconds < 120 ? { note: 'shorter sustain period than the target names' } : {}),
    ...(l && l.maxSustainedRate < 50_000 && l.maxKeptUpRate > l.maxSustainedRate
      ? {
          note: `generator-limited: the pipeline kept up with the ${rate(l.maxKeptUpRate)} the generator delivered at higher offered rates`,
        }
      : {}),
  });
  const ds = r.state?.dedupStage;
  t.push({
    name: 'dedup stage',
    goal: '>= 1,000,000 rows/s at 20M seen keys',
    measured: ds ? `${rate(ds.rowsPerSecond)} at ${fmtInt(ds.seenKeys)} keys` : 'not run',
    met: ds ? ds.rowsPerSecond >= 1_000_000 : undefined,
    ...(ds && ds.seenKeys < 20_000_000 ? { note: 'less state than the target names' } : {}),
  });
  const sc = r.state?.sliceCosts ?? [];
  const first = sc[0];
  const last = sc[sc.length - 1];
  t.push({
    name: 'per-slice cost growth',
    goal: 'cost at 100M seen keys <= 2x cost at 1M',
    measured:
      first && last && first !== last
        ? `${ratio(last.insertMsMedian, first.insertMsMedian)} (${fmtInt(last.seenKeys)} vs ${fmtInt(first.seenKeys)} keys)`
        : 'not run',
    met: first && last && first !== last ? last.insertMsMedian <= 2 * first.insertMsMedian : undefined,
    ...(last && last.seenKeys < 100_000_000 ? { note: 'less state than the target names' } : {}),
  });
  const cc = r.check?.costs ?? [];
  const biggest = cc[cc.length - 1];
  t.push({
    name: 'consistency check cost',
    goal: "< 5% of the pipeline's time at 100M final rows (check / slices for the same rows)",
    measured: biggest
      ? `${(biggest.checkToSlices * 100).toFixed(1)}% of the slices' time (${ms(biggest.incrementalMs)} a minute, ${(biggest.shareOfInterval * 100).toFixed(2)}% of it) at ${fmtInt(biggest.finalRows)} final rows`
      : 'not run',
    met: biggest ? biggest.checkToSlices < 0.05 && biggest.incrementalOk : undefined,
    ...(biggest && biggest.finalRows < 100_000_000
      ? { note: 'fewer final rows than the target names (100M: --check-sizes ...,100000000)' }
      : {}),
  });
  const lat = r.latency;
  t.push({
    name: 'latency p99',
    goal: '<= 5 s at 20k events/s offered',
    measured: lat ? `${ms(lat.p99Ms)} at ${rate(lat.offeredRate)}` : 'not run',
    met: lat ? lat.p99Ms <= 5_000 && lat.missing === 0 : undefined,
    ...(lat && lat.offeredRate !== 20_000 ? { note: 'another offered rate than the target names' } : {}),
  });
  const rss = Math.max(d?.daemonPeakRss ?? 0, r.streamDaemonPeakRss ?? 0);
  t.push({
    name: 'daemon RSS',
    goal: '<= 200 MB',
    measured: rss ? mb(rss) : 'not run',
    met: rss ? rss <= 200 * MB : undefined,
  });
  const best = Math.max(r.rmt?.eventsPerSecond ?? 0, r.handwritten?.eventsPerSecond ?? 0);
  t.push({
    name: 'per-core throughput',
    goal: '>= 10x the better baseline',
    measured:
      d && best
        ? `${ratio(d.eventsPerSecond, best)} (same cores; ${ratio(d.eventsPerCpuSecond, Math.max(r.rmt?.eventsPerCpuSecond ?? 0, r.handwritten?.eventsPerCpuSecond ?? 0))} per CPU-second)`
        : 'not run',
    met: d && best ? d.eventsPerSecond >= 10 * best : undefined,
  });
  return t;
}

export function render(r: BenchResult): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`winnow benchmark  ${r.startedAt}  (${r.options.quick ? 'quick' : 'full'} run, ${r.seconds.toFixed(0)} s)`);
  out.push(`machine: ${m.cores} cores (${m.cpuModel}), ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}`);
  out.push(
    `versions: node ${m.node}, ClickHouse ${m.clickhouse}, Kafka ${m.kafka}, kafkajs ${m.kafkajs}, @clickhouse/client ${m.clickhouseClient}, winnow ${m.commit}`,
  );
  const p = r.preload;
  if (p)
    out.push(
      `load: ${fmtInt(p.events)} events, ${fmtInt(p.duplicates)} duplicates, ${p.avgBytes.toFixed(0)} bytes/event, ${r.options.partitions} partitions, window ${r.options.windowMs / 1000} s; pre-loaded at ${rate(p.produceRate)}`,
    );
  const lv = r.options.levers;
  out.push(
    `levers: maxSliceRows ${fmtInt(lv.maxSliceRows)}, tick ${lv.tickMs} ms, consumers ${lv.consumers}, queue ${JSON.stringify(lv.queue)}, seen ${JSON.stringify(lv.seen)}, insert ${JSON.stringify(lv.insert)}`,
  );

  const d = r.drain;
  const a = r.rmt;
  const h = r.handwritten;
  if (d || a || h)
    out.push(
      ...table(
        'Drain (topic pre-loaded; until the last row is visible)',
        ['', 'winnow', 'RMT+FINAL', 'hand-written', 'vs RMT', 'vs hand'],
        [
          [
            'events/s',
            rate(d?.eventsPerSecond),
            rate(a?.eventsPerSecond),
            rate(h?.eventsPerSecond),
            ratio(d?.eventsPerSecond, a?.eventsPerSecond),
            ratio(d?.eventsPerSecond, h?.eventsPerSecond),
          ],
          ['seconds', d?.seconds.toFixed(1) ?? '-', a?.seconds.toFixed(1) ?? '-', h?.seconds.toFixed(1) ?? '-', '', ''],
          [
            'events per CPU-second',
            fmtInt(d?.eventsPerCpuSecond ?? NaN),
            fmtInt(a?.eventsPerCpuSecond ?? NaN),
            fmtInt(h?.eventsPerCpuSecond ?? NaN),
            ratio(d?.eventsPerCpuSecond, a?.eventsPerCpuSecond),
            ratio(d?.eventsPerCpuSecond, h?.eventsPerCpuSecond),
          ],
          [
            'per machine core',
            rate((d?.eventsPerSecond ?? NaN) / m.cores),
            rate((a?.eventsPerSecond ?? NaN) / m.cores),
            rate((h?.eventsPerSecond ?? NaN) / m.cores),
            '',
            '',
          ],
          [
            'rows in final table',
            fmtInt(d?.finalRows ?? NaN),
            fmtInt(a?.rowsBeforeMerge ?? NaN),
            fmtInt(h?.finalRows ?? NaN),
            '',
            '',
          ],
          [
            'controller/consumer peak RSS',
            mb(d?.daemonPeakRss),
            '-',
            mb(h?.peakRss),
            '',
            ratio(h?.peakRss, d?.daemonPeakRss) + ' less',
          ],
        ],
      ),
    );
  if (d) {
    out.push(
      `winnow drain: staging full after ${d.stagedSeconds.toFixed(1)} s (Kafka engine ${rate(d.events / d.stagedSeconds)}); ${d.slices} slices (median ${fmtInt(d.sliceRowsMedian)} rows), inserts ${rate(d.insertRowsPerSecond)} staged rows, ClickHouse memory per slice insert median ${mb(d.insertMemoryMedian)} max ${mb(d.insertMemoryMax)}, per-slice overhead ${ms(d.overheadMsMedian)}; duplicates in final ${d.duplicateKeysInFinal}, dead letters ${d.deadLetters}`,
    );
    if (d.finalRows !== d.unique)
      out.push(`!! winnow final rows ${fmtInt(d.finalRows)} != distinct keys ${fmtInt(d.unique)}`);
  }
  if (a)
    out.push(
      `RMT exact answer: SELECT count() FINAL ${ms(a.countFinalMs)} (${mb(a.countFinalMemory)}, ${fmtInt(a.countFinal)} rows); OPTIMIZE TABLE FINAL ${ms(a.optimizeFinalMs)} -> ${fmtInt(a.rowsAfterOptimize)} rows`,
    );
  if (h) {
    const perKey = h.mapMemory.find((x) => !x.error)?.bytesPerKey;
    const rateW = r.options.latencyRate;
    const windows = [60, 600, 3600, 86_400].map((s) => {
      const keys = rateW * s;
      const measured = h.mapMemory.find((x) => Math.abs(x.keys - keys) / keys < 0.05);
      const mem = measured ? `${mb(measured.rss)} RSS measured` : perKey ? `~${mb(perKey * keys)} heap est.` : '-';
      return `${s >= 3600 ? `${s / 3600}h` : `${s / 60}m`}: ${fmtInt(keys)} keys ${keys > 2 ** 24 ? '(over the 2^24 Map limit: RangeError)' : mem}`;
    });
    out.push(`hand-written Map memory at ${fmtInt(rateW)} events/s by window: ${windows.join('; ')}`);
  }

  const lat = r.latency;
  const live = r.live;
  if (lat || live)
    out.push(
      ...table(
        'Streaming (generator on this machine)',
        ['', 'value'],
        [
          ['latency offered / achieved', lat ? `${rate(lat.offeredRate)} / ${rate(lat.achievedRate)}` : '-'],
          [
            'latency p50 / p95 / p99 / max',
            lat ? `${ms(lat.p50Ms)} / ${ms(lat.p95Ms)} / ${ms(lat.p99Ms)} / ${ms(lat.maxMs)}` : '-',
          ],
          ['latency samples (missing), poll every', lat ? `${lat.samples} (${lat.missing}), ${ms(lat.pollMs)}` : '-'],
          ...(live?.probes ?? []).map((s) => [
            `step ${fmtInt(s.offeredRate)}/s (${s.seconds.toFixed(0)} s)`,
            `achieved ${rate(s.achievedRate)}, processed ${rate(s.processedRate)}, ${stepStatus(s)}`,
          ]),
          ...(live?.sustained ?? []).map((s) => [
            `sustain ${fmtInt(s.offeredRate)}/s (${s.seconds.toFixed(0)} s)`,
            `achieved ${rate(s.achievedRate)}, processed ${rate(s.processedRate)}, ${stepStatus(s)}`,
          ]),
          ['live: max offered rate held for the sustain period', live ? rate(live.maxSustainedRate) : '-'],
          ['live: max delivered rate kept up with (any step)', live ? rate(live.maxKeptUpRate) : '-'],
          ['controller peak RSS while streaming', mb(r.streamDaemonPeakRss)],
          ['ClickHouse server peak RSS (whole run)', mb(r.clickhousePeakRss)],
        ],
      ),
    );

  const st = r.state;
  if (st) {
    const base = st.sliceCosts[0]?.insertMsMedian;
    out.push(
      ...table(
        `Per-slice cost vs seen keys (slice of ${fmtInt(r.options.sliceRows)} rows; insert only, median of 3)`,
        [
          'seen keys',
          'parts',
          'insert',
          'vs first',
          'rows read',
          'CH memory',
          'whole tick',
          'counts',
          'plan+checkpoints',
        ],
        st.sliceCosts.map((c) => [
          fmtInt(c.seenKeys),
          String(c.seenParts),
          ms(c.insertMsMedian),
          ratio(c.insertMsMedian, base),
          fmtInt(c.readRowsMedian),
          mb(c.memoryMedian),
          ms(c.tickMsMedian),
          ms(c.byKindMs['count']),
          ms((c.byKindMs['plan'] ?? 0) + (c.byKindMs['checkpoint'] ?? 0)),
        ]),
      ),
    );
    const ds = st.dedupStage;
    if (ds)
      out.push(
        `dedup stage: ${fmtInt(ds.rows)} staged rows at ${fmtInt(ds.seenKeys)} seen keys in ${ds.slices} slices: ${rate(ds.rowsPerSecond)} (inserts only), ${rate(ds.tickRowsPerSecond)} (whole ticks), max CH memory ${mb(ds.memoryMax)}`,
      );
    const sl = st.stream;
    if (sl)
      out.push(
        `state live at ${fmtInt(sl.seenKeysBefore)} seen keys: ${rate(sl.step.achievedRate)} delivered of ${rate(sl.offeredRate)} offered for ${sl.seconds} s: ${stepStatus(sl.step)} (backlog at the end ${fmtInt(sl.step.backlogEnd)}), p99 produce -> visible ${ms(sl.latency.p99Ms)}, ${sl.slices} slices (insert median ${ms(sl.insertMsMedian)}, CH memory max ${mb(sl.insertMemoryMax)}), controller peak RSS ${mb(sl.controllerPeakRss)}, ClickHouse RSS ${mb(sl.clickhouseRss)}`,
      );
    if (st.streamError) out.push(`state live: FAILED: ${st.streamError}`);
    out.push(
      `state on disk: ${Object.entries(st.disk)
        .map(([t, v]) => `${t} ${mb(v.bytes)} (${fmtInt(v.rows)} rows, ${v.parts} parts)`)
        .join('; ')}`,
    );
    if (d)
      out.push(
        `drain state on disk: ${Object.entries(d.disk)
          .map(([t, v]) => `${t} ${mb(v.bytes)}`)
          .join('; ')}`,
      );
  }
  if (r.check) {
    out.push(
      ...table(
        `Consistency check cost vs final rows (incremental: after the rows processed in one check interval; share of a ${fmtInt(r.check.checkIntervalMs / 1000)} s interval)`,
        [
          'final rows',
          'processed since last check',
          'slices',
          'incremental check',
          'check / slices',
          'share of interval',
          'full check',
        ],
        r.check.costs.map((c) => [
          fmtInt(c.finalRows),
          fmtInt(c.trafficRows),
          `${c.slices} (${ms(c.slicesMs)})`,
          `${ms(c.incrementalMs)}${c.incrementalOk ? '' : ' NOT OK'}`,
          `${(c.checkToSlices * 100).toFixed(1)}%`,
          `${(c.shareOfInterval * 100).toFixed(2)}%`,
          c.fullMs === null ? 'not run' : `${ms(c.fullMs)}${c.fullOk ? '' : ' NOT OK'}`,
        ]),
      ),
    );
  }
  if (r.levers) out.push(...renderLevers(r.levers));

  out.push(
    ...table(
      'Targets',
      ['target', 'goal', 'measured', 'status'],
      r.targets.map((t) => [
        t.name,
        t.goal,
        t.measured,
        `${t.met === undefined ? 'not run' : t.met ? 'MET' : 'NOT MET'}${t.note ? ` (${t.note})` : ''}`,
      ]),
    ),
  );
  const busy = r.phases.filter((p) => p.foreignCpuShare > 0.1);
  if (busy.length > 0)
    out.push(
      `!! the machine was not idle: other processes used ${busy.map((p) => `${(p.foreignCpuShare * 100).toFixed(0)}% during ${p.name}`).join(', ')}; figures are lower than on an idle machine`,
    );
  for (const f of r.failures) out.push(`!! phase ${f.phase} failed: ${f.error}`);
  return out.join('\n');
}

function renderLevers(l: LeversResult): string[] {
  return table(
    `Seen-keys layouts: lookup of a ${fmtInt(l.sliceKeys)}-key slice against ${fmtInt(l.seenKeys)} keys`,
    [
      'layout',
      'fill',
      'lookup',
      'rows read',
      'parts',
      'CH memory',
      'size',
      'bytes/key',
      'disk/key',
      'RSS +',
      'bloom useful',
      'found',
    ],
    l.layouts.map((x) => [
      x.name,
      `${x.fillSeconds.toFixed(1)} s`,
      ms(x.lookupMsMedian),
      fmtInt(x.readRows),
      String(x.parts),
      mb(x.memory),
      mb(x.bytes),
      (x.bytes / l.seenKeys).toFixed(1),
      x.diskBytes === undefined ? '-' : (x.diskBytes / l.seenKeys).toFixed(1),
      mb(x.rssGrowth),
      x.bloomUseful === undefined ? '-' : fmtInt(x.bloomUseful),
      fmtInt(x.found),
    ]),
  );
}
