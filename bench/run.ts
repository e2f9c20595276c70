/**
 * `npm run bench`: winnow and its baselines on their own embedded servers,
 * phase by phase; prints a table and writes bench/results/<time>.json.
 * A failing phase is reported and the others still run; the servers are
 * always stopped.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCtx, fmtInt, type Ctx } from './context.ts';
import { HELP, parseOptions, type Options, type Scenario } from './options.ts';
import { benchCpu, memoryOf } from './probe.ts';
import { evaluateTargets, render, type BenchResult, type Machine } from './report.ts';
import { drain } from './scenarios/drain.ts';
import { handwrittenBaseline } from './scenarios/handwritten.ts';
import { latency } from './scenarios/latency.ts';
import { checkCost } from './scenarios/check.ts';
import { seenLayouts } from './scenarios/levers.ts';
import { live } from './scenarios/live.ts';
import { preloadTopic } from './scenarios/preload.ts';
import { rmtBaseline } from './scenarios/rmt.ts';
import { stateScaling } from './scenarios/state.ts';
import { startRig } from './scenarios/stream.ts';
import { startServers, type BenchServers } from './servers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function version(pkg: string): string {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function machine(s: BenchServers): Machine {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'sql', 'migrations'], {
      cwd: here,
      encoding: 'utf8',
    }).trim();
    if (dirty) commit += '+local changes';
  } catch {
    // not a git checkout: the commit stays unknown
  }
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    clickhouse: s.clickhouse.version,
    kafka: s.kafka.version,
    kafkajs: version('kafkajs'),
    clickhouseClient: version('@clickhouse/client'),
    commit,
  };
}

/** CPU the machine spent on anything but this benchmark (other users' work skews every figure). */
function ours(s: BenchServers): Promise<{ busy: number; own: number }> {
  return benchCpu({ clickhouse: s.clickhouse.pid, kafka: s.kafka.pid });
}

async function phase<T>(ctx: Ctx, r: BenchResult, name: string, run: () => Promise<T>): Promise<T | undefined> {
  const t0 = performance.now();
  const c0 = await ours(ctx.servers);
  ctx.log(`== ${name}`);
  const account = async (): Promise<void> => {
    const c1 = await ours(ctx.servers);
    const seconds = (performance.now() - t0) / 1000;
    const foreign = Math.max(0, c1.busy - c0.busy - (c1.own - c0.own)) / (seconds * os.cpus().length);
    r.phases.push({ name, seconds, foreignCpuShare: foreign });
    if (foreign > 0.1) ctx.log(`   other processes used ${(foreign * 100).toFixed(0)}% of the machine during ${name}`);
  };
  try {
    const out = await run();
    await account();
    ctx.log(`== ${name} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    return out;
  } catch (err) {
    await account();
    const msg =
      err instanceof Error
        ? `${err.message}${err.cause ? ` (cause: ${String((err.cause as Error).message ?? err.cause)})` : ''}`
        : String(err);
    ctx.log(`== ${name} FAILED: ${msg}`);
    r.failures.push({ phase: name, error: msg });
    return undefined;
  }
}

async function runAll(opts: Options, servers: BenchServers, started: number): Promise<BenchResult> {
  const ctx = createCtx(opts, servers, started);
  const want = (s: Scenario): boolean => opts.only.includes(s);
  const r: BenchResult = {
    startedAt: new Date().toISOString(),
    seconds: 0,
    machine: machine(servers),
    options: opts,
    phases: [],
    failures: [],
    targets: [],
  };
  if (want('drain') || want('rmt') || want('handwritten')) {
    r.preload = await phase(ctx, r, 'preload', () => preloadTopic(ctx));
    const pre = r.preload;
    if (pre) {
      if (want('drain')) {
        r.drain = await phase(ctx, r, 'winnow drain', () => drain(ctx, pre));
        // A fast wrong answer is a failure: every distinct key once, nothing else.
        const d = r.drain;
        if (d && (d.finalRows !== d.unique || d.duplicateKeysInFinal !== 0)) {
          r.failures.push({
            phase: 'winnow drain',
            error: `final table holds ${d.finalRows} rows for ${d.unique} distinct keys (${d.duplicateKeysInFinal} duplicate keys)`,
          });
        }
      }
      if (want('rmt'))
        r.rmt = await phase(ctx, r, 'baseline: Kafka engine -> ReplacingMergeTree', () => rmtBaseline(ctx, pre));
      if (want('handwritten'))
        r.handwritten = await phase(ctx, r, 'baseline: hand-written kafkajs consumer', () =>
          handwrittenBaseline(ctx, pre),
        );
    }
  }
  if (want('latency') || want('live')) {
    await phase(ctx, r, 'streaming (latency, live)', async () => {
      const rig = await startRig(ctx, 'live', opts.latencyRate);
      try {
        if (want('latency')) r.latency = await phase(ctx, r, 'latency', () => latency(ctx, rig));
        if (want('live')) r.live = await phase(ctx, r, 'live throughput', () => live(ctx, rig));
      } finally {
        r.streamDaemonPeakRss = (await rig.stop()).maxRss;
      }
    });
  }
  if (want('state'))
    r.state = await phase(ctx, r, 'per-slice cost and dedup stage vs seen keys', () => stateScaling(ctx));
  if (want('check')) {
    r.check = await phase(ctx, r, 'consistency check cost vs final rows', () => checkCost(ctx));
    // A check that finds a pipeline the benchmark built right inconsistent is a wrong answer.
    for (const c of r.check?.costs ?? []) {
      if (!c.incrementalOk || c.fullOk === false)
        r.failures.push({
          phase: 'consistency check cost vs final rows',
          error: `the check found ${fmtInt(c.finalRows)} consistent final rows inconsistent`,
        });
    }
  }
  if (want('levers')) r.levers = await phase(ctx, r, 'seen-keys layouts', () => seenLayouts(ctx));
  r.clickhousePeakRss = (await memoryOf(servers.clickhouse.pid)).peak;
  r.seconds = (performance.now() - started) / 1000;
  r.targets = evaluateTargets(r);
  return r;
}

async function main(): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\nsee: npm run bench -- --help\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const started = performance.now();
  const servers = await startServers({ keep: opts.keep, log: (l) => process.stderr.write(l + '\n') });
  const onSignal = (sig: NodeJS.Signals): void => {
    process.stderr.write(`bench: ${sig}, stopping the servers\n`);
    void servers.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: BenchResult;
  try {
    result = await runAll(opts, servers, started);
  } finally {
    await servers.stop();
  }
  const text = render(result);
  process.stdout.write(text + '\n');
  const out =
    opts.out ??
    path.join(here, 'results', `${result.startedAt.replace(/[:.]/g, '-')}${opts.quick ? '-quick' : ''}.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({ ...result, table: text.split('\n') }, null, 2) + '\n');
  process.stdout.write(`\nresults: ${path.relative(process.cwd(), out)}\n`);
  return result.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
