/**
 * Why one file over 300 lines: `winnow dev up | down | status`: argument parsing, the detached supervisor's start and the status table share one state file and its messages, so they stay together.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WinnowError, type ErrorCode } from '../errors.ts';
import {
  defaultStateDir,
  isAlive,
  isOurProcess,
  oneLineError,
  processMarkers,
  readDevState,
  removeDevState,
  type DevState,
} from '../../dev/dev-state.ts';
import { embeddedClickHouseMissing } from '../../dev/clickhouse-child.ts';
import { nodeScriptArgv } from '../../dev/process.ts';
import type { SupervisorMessage, SupervisorOptions } from '../../dev/supervisor.ts';
import { parseFlags, parsePort, type Command } from './command.ts';
import { ProgressLine } from './progress.ts';

const help = `Usage: winnow dev <up|down|status> [options]

Runs an embedded ClickHouse (26.x, from the npm package @chdb/lib-*) and a local
single-node Apache Kafka broker (KRaft, jars from Maven Central, needs Java 17+)
for development, with no Docker. State, data and logs live in .winnow/ of the
working directory.

  up        start both servers (reuses them when already running) and return once ready;
            what it waits on (the Kafka jars' download: bytes of total, percent) is shown on stderr
  down      stop both servers; no process is left behind
  status    report whether they run, with their addresses

Options for up:
  --clickhouse-http-port N   ClickHouse HTTP port          (default 8123; 0 = any free port)
  --clickhouse-tcp-port N    ClickHouse native TCP port    (default 9000; 0 = any free port)
  --kafka-port N             Kafka PLAINTEXT listener      (default 9092; 0 = any free port)
  --kafka-sasl-port N        Kafka SASL_PLAINTEXT listener, PLAIN admin/admin-secret
                                                           (default 9093; 0 = any free port)
  --data-dir DIR             server data                   (default .winnow/data)
  --timeout SECONDS          how long to wait for readiness (default 120)
Options for all:
  --state-dir DIR            where state and logs are kept (default ./.winnow)
  --json                     print one JSON object instead of text

Environment: WINNOW_CACHE_DIR  where the Kafka jars are cached (default ~/.cache/winnow)
             WINNOW_MAVEN_URL  a Maven repository to download them from (default Maven Central)`;

const flags = {
  'clickhouse-http-port': { type: 'string' },
  'clickhouse-tcp-port': { type: 'string' },
  'kafka-port': { type: 'string' },
  'kafka-sasl-port': { type: 'string' },
  'data-dir': { type: 'string' },
  'state-dir': { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const devCommand: Command = {
  name: 'dev',
  summary: 'start, stop or inspect the embedded ClickHouse and local Kafka (no Docker needed)',
  help,
  async run(args) {
    try {
      return await runDev(args);
    } catch (err) {
      // The terminal gets one line: cause (fix). Log tails stay in the log files.
      const stateDir = stateDirOf(args);
      const line = oneLineError(err, path.join(stateDir ?? defaultStateDir(), 'logs'));
      if (line.code === 'USAGE' && line.hint === undefined) line.hint = 'see: winnow dev --help';
      throw new WinnowError(line.code as ErrorCode, line.message, {
        cause: err,
        ...(line.hint === undefined ? {} : { hint: line.hint }),
      });
    }
  },
};

/** The --state-dir of the arguments as far as they parse, for pointing at logs. */
function stateDirOf(args: string[]): string | undefined {
  try {
    return path.resolve(parseFlags('dev', args, flags).values['state-dir'] ?? defaultStateDir());
  } catch {
    return undefined;
  }
}

async function runDev(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('dev', args, flags);
  const [action, ...extra] = positionals;
  if (extra.length > 0) throw new WinnowError('USAGE', `dev: unexpected argument "${extra[0]}"`);
  const stateDir = path.resolve(values['state-dir'] ?? defaultStateDir());
  const json = values.json;
  switch (action) {
    case 'up': {
      const timeout = Number(values.timeout ?? '120');
      if (!Number.isFinite(timeout) || timeout <= 0) {
        throw new WinnowError(
          'USAGE',
          `dev up: --timeout must be a positive number of seconds, got "${values.timeout}"`,
          {
            hint: 'e.g. --timeout 120',
          },
        );
      }
      return up(
        {
          stateDir,
          dataDir: path.resolve(values['data-dir'] ?? path.join(stateDir, 'data')),
          host: '127.0.0.1',
          clickhouseHttpPort: parsePort('dev up', 'clickhouse-http-port', values['clickhouse-http-port'], 8123),
          clickhouseTcpPort: parsePort('dev up', 'clickhouse-tcp-port', values['clickhouse-tcp-port'], 9000),
          kafkaPort: parsePort('dev up', 'kafka-port', values['kafka-port'], 9092),
          kafkaSaslPort: parsePort('dev up', 'kafka-sasl-port', values['kafka-sasl-port'], 9093),
          readyTimeoutMs: timeout * 1000,
        },
        json,
      );
    }
    case 'down':
      return down(stateDir, json);
    case 'status':
      return status(stateDir, json);
    case undefined:
      throw new WinnowError('USAGE', 'dev: say up, down or status', { hint: 'see: winnow dev --help' });
    default:
      throw new WinnowError('USAGE', `dev: unknown action "${action}", expected up, down or status`);
  }
}

interface Liveness {
  supervisor: boolean;
  clickhouse: boolean;
  kafka: boolean;
}

/** Whether each process of dev.json runs, and is still ours (not a recycled pid). */
function liveness(state: DevState): Liveness {
  const markers = processMarkers(state);
  return {
    supervisor: isOurProcess(state.supervisorPid, ...markers.supervisor),
    clickhouse: isOurProcess(state.clickhouse.pid, ...markers.clickhouse),
    kafka: isOurProcess(state.kafka.pid, ...markers.kafka),
  };
}

function printState(state: DevState, live: Liveness, json: boolean, reused?: boolean): void {
  if (json) {
    process.stdout.write(
      JSON.stringify({ ...state, running: live, ...(reused === undefined ? {} : { reused }) }) + '\n',
    );
    return;
  }
  const mark = (ok: boolean): string => (ok ? 'running' : 'NOT running');
  process.stdout.write(
    [
      `ClickHouse ${state.clickhouse.version}  ${mark(live.clickhouse)}  ${state.clickhouse.url} (tcp ${state.clickhouse.tcpPort})  pid ${state.clickhouse.pid}`,
      `Kafka ${state.kafka.version}       ${mark(live.kafka)}  PLAINTEXT ${state.kafka.brokers.join(',')}  SASL_PLAINTEXT ${state.kafka.saslBrokers.join(',')} (PLAIN ${state.kafka.sasl.username})  pid ${state.kafka.pid}`,
      `logs: ${state.clickhouse.logFile}, ${state.kafka.logFile}`,
    ].join('\n') + '\n',
  );
}

async function up(opts: SupervisorOptions, json: boolean): Promise<number> {
  const missing = embeddedClickHouseMissing();
  if (missing) throw new WinnowError('CLICKHOUSE_LIBRARY_MISSING', missing);
  const existing = await readDevState(opts.stateDir);
  if (existing) {
    const live = liveness(existing);
    if (live.supervisor && live.clickhouse && live.kafka) {
      if (!json) process.stdout.write('already running; reusing\n');
      printState(existing, live, json, true);
      return 0;
    }
    // A previous run died or lost a server: stop what is left, then start afresh.
    await stopState(existing);
  }

  await mkdir(path.join(opts.stateDir, 'logs'), { recursive: true });
  const supervisorLog = path.join(opts.stateDir, 'logs', 'supervisor.log');
  const log = await open(supervisorLog, 'a');
  // --state-dir only names the instance in `ps`; the options travel in the environment.
  const child = spawn(
    process.execPath,
    [...nodeScriptArgv(import.meta.url, '../../dev/supervisor.ts'), '--state-dir', opts.stateDir],
    {
      detached: true,
      // A working directory that outlives the command's and that `dev down` may delete.
      cwd: opts.stateDir,
      stdio: ['ignore', log.fd, log.fd, 'ipc'],
      env: { ...process.env, WINNOW_SUPERVISOR_OPTIONS: JSON.stringify(opts) },
    },
  );
  await log.close();

  // What it waits on, on stderr (stdout keeps its lines, or its one JSON object).
  const progress = new ProgressLine({
    tty: process.stderr.isTTY === true,
    write: (s) => void process.stderr.write(s),
  });
  progress.start();
  const outcome = await new Promise<SupervisorMessage | { type: 'exit'; code: number | null }>((resolve) => {
    child.on('message', (msg: SupervisorMessage) => {
      if (msg.type === 'activity') {
        const { text, bytes, total } = msg;
        progress.update(msg.task, {
          text,
          ...(bytes === undefined ? {} : { bytes }),
          ...(total === undefined ? {} : { total }),
        });
        return;
      }
      if (msg.type === 'progress') {
        if (msg.done) progress.done(msg.done);
        // Above the progress line: cleared first, drawn again after.
        progress.say(msg.message, json ? () => undefined : (l) => void process.stdout.write(l));
        return;
      }
      resolve(msg);
    });
    child.on('exit', (code) => resolve({ type: 'exit', code }));
  });
  progress.stop();
  if (outcome.type === 'ready') {
    child.disconnect();
    child.unref();
    printState(outcome.state, liveness(outcome.state), json, false);
    return 0;
  }
  if (outcome.type === 'error') {
    // It stops both servers before it exits; return only once it has.
    await waitForExit(child.pid, 30_000);
    throw new WinnowError(
      outcome.code as ErrorCode,
      outcome.message,
      outcome.hint === undefined ? {} : { hint: outcome.hint },
    );
  }
  // Died without a word (crashed, killed): its log's last error line is the best cause there is.
  const lines = await readFile(supervisorLog, 'utf8').then(
    (t) =>
      t
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    () => [] as string[],
  );
  const cause = lines.filter((l) => /error/i.test(l)).pop() ?? lines.pop();
  const how = outcome.type === 'exit' ? `code ${outcome.code}` : 'unexpectedly';
  throw new WinnowError(
    'PROCESS_EXITED',
    `the dev supervisor exited (${how}) before the servers were ready${cause ? `: ${cause.slice(0, 300)}` : ''}`,
    { hint: `see ${supervisorLog}` },
  );
}

async function waitForExit(pid: number | undefined, timeoutMs: number): Promise<boolean> {
  if (pid === undefined) return true;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

/**
 * SIGTERM to the supervisor (which stops both servers cleanly); SIGKILL whatever
 * is left after a grace period. Only processes that are still ours are signalled:
 * after a reboot the pids of dev.json may belong to anything.
 */
async function stopState(state: DevState): Promise<void> {
  const markers = processMarkers(state);
  const processes: [number, string[]][] = [
    [state.clickhouse.pid, markers.clickhouse],
    [state.kafka.pid, markers.kafka],
    [state.supervisorPid, markers.supervisor],
  ];
  const ours = (): number[] => processes.filter(([pid, m]) => isOurProcess(pid, ...m)).map(([pid]) => pid);
  if (ours().includes(state.supervisorPid)) {
    signal(state.supervisorPid, 'SIGTERM');
    await waitForExit(state.supervisorPid, 45_000);
  }
  for (const pid of ours()) signal(pid, 'SIGKILL');
  const left: number[] = [];
  for (const pid of ours()) if (!(await waitForExit(pid, 5_000))) left.push(pid);
  if (left.length > 0) {
    throw new WinnowError('PROCESS_EXITED', `process ${left.join(', ')} of winnow dev survived SIGKILL`, {
      hint: `check it with ps -p ${left.join(',')}; ${stateFileHint(state.stateDir)}`,
    });
  }
  await removeDevState(state.stateDir);
}

function stateFileHint(stateDir: string): string {
  return `once it is gone, winnow dev down again or delete ${path.join(stateDir, 'dev.json')}`;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // exited meanwhile
  }
}

async function down(stateDir: string, json: boolean): Promise<number> {
  const state = await readDevState(stateDir);
  if (!state) {
    process.stdout.write(json ? JSON.stringify({ stopped: false, reason: 'not running' }) + '\n' : 'nothing running\n');
    return 0;
  }
  const started = Date.now();
  await stopState(state);
  const ms = Date.now() - started;
  process.stdout.write(
    json ? JSON.stringify({ stopped: true, ms }) + '\n' : `stopped ClickHouse and Kafka (${ms} ms)\n`,
  );
  return 0;
}

async function status(stateDir: string, json: boolean): Promise<number> {
  const state = await readDevState(stateDir);
  if (!state) {
    process.stdout.write(
      json ? JSON.stringify({ running: false }) + '\n' : 'not running (start with: npx winnow dev up)\n',
    );
    return 3;
  }
  const live = liveness(state);
  printState(state, live, json);
  return live.clickhouse && live.kafka ? 0 : 3;
}
