/**
 * Why one file over 300 lines: the embedded server's start, readiness, lock and stop are one lifecycle over one child process.
 *
 * The embedded ClickHouse: a real ClickHouse 26.x server (libchdb from the npm
 * package @chdb/lib-<platform>) in a child process, listening on loopback HTTP
 * and TCP ports, with its data in a persistent directory. See
 * clickhouse-child.ts for why it runs the way it does.
 *
 * Lifetime: the child serves until its stdin closes. stop() closes it; if this
 * process dies, the OS closes it, so the server never outlives its owner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { appendFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WinnowError } from '../src/errors.ts';
import { silentLogger, type Logger } from '../src/log.ts';
import { CHILD_EXIT, type ClickHouseChildConfig } from './clickhouse-child.ts';
import { assertDataDirFree, dataDirLocked, statusPid } from './clickhouse-lock.ts';
import { writeUsersConfig, type ClickHouseUser } from './clickhouse-users.ts';
import { assertPortFree, freePort } from './ports.ts';
import { nodeScriptArgv, readLogSince } from './process.ts';

/**
 * The `<rocksdb>` server configuration for winnow's seen-key index
 * (`dedup.index: rocksdb`, EmbeddedRocksDB tables): a bloom filter of 10 bits a
 * key, so a key never seen is answered without reading a data block, and a
 * 256 MB block cache. ClickHouse reads it in StorageEmbeddedRocksDB::initDB
 * and always installs NewBlockBasedTableFactory(block_based_table_options), so
 * the filter must be there (bench/README.md, "EmbeddedRocksDB with a bloom
 * filter"). Files a bulk insert writes carry no filter until a compaction
 * rewrites them. `winnow dev up` starts its ClickHouse with it.
 */
export const ROCKSDB_SERVER_CONFIG = `  <rocksdb><block_based_table_options>
    <filter_policy>bloomfilter:10:false</filter_policy><block_cache>268435456</block_cache>
  </block_based_table_options></rocksdb>
`;

export interface EmbeddedClickHouseOptions {
  /** Persistent data directory (created if missing). */
  dataDir: string;
  /** Listen address; loopback only, because the `default` user has no password. Default 127.0.0.1. */
  host?: string;
  /** HTTP port; default 8123; 0 picks a free port. */
  httpPort?: number;
  /** Native TCP port; default 9000; 0 picks a free port. */
  tcpPort?: number;
  /** Server stdout/stderr and ClickHouse's own log (appended). Default: `<dataDir>.log` beside the data directory. */
  logFile?: string;
  /** Extra users with passwords, optionally with only some grants (in a generated users.xml); `default` has none. */
  users?: ClickHouseUser[];
  /** More server configuration, XML inside <clickhouse> (the benchmark's <rocksdb> options). */
  extraConfig?: string;
  /** ClickHouse's own log level; default `information`. `debug` logs every query's text (to attribute a log line). */
  logLevel?: 'information' | 'debug' | 'trace';
  /** How long to wait for /ping to answer, in ms. Default 60000. */
  readyTimeoutMs?: number;
  /** How long stop() waits after closing stdin before SIGKILL, in ms. Default 15000. */
  stopTimeoutMs?: number;
  logger?: Logger;
}

export interface RunningClickHouse {
  url: string;
  httpPort: number;
  tcpPort: number;
  host: string;
  pid: number;
  version: string;
  dataDir: string;
  logFile: string;
  /** Closes the child's stdin (clean stop) and waits; SIGKILL after stopTimeoutMs. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULTS = { host: '127.0.0.1', httpPort: 8123, tcpPort: 9000, readyTimeoutMs: 60_000, stopTimeoutMs: 15_000 };
/** Ports picked by us can be taken by someone else before the child binds them; try again this often. */
const PICKED_PORT_ATTEMPTS = 3;
const POLL_INTERVAL_MS = 100;
const KILL_WAIT_MS = 5_000;

type Exit = { code: number | null; signal: NodeJS.Signals | null };

export async function startEmbeddedClickHouse(opts: EmbeddedClickHouseOptions): Promise<RunningClickHouse> {
  const logger = (opts.logger ?? silentLogger).child({ component: 'embedded-clickhouse' });
  const host = loopbackHost(opts.host ?? DEFAULTS.host);
  const dataDir = path.resolve(opts.dataDir);
  const logFile = path.resolve(opts.logFile ?? `${dataDir}.log`);
  const wantHttp = checkPort('httpPort', opts.httpPort ?? DEFAULTS.httpPort);
  const wantTcp = checkPort('tcpPort', opts.tcpPort ?? DEFAULTS.tcpPort);
  if (wantHttp !== 0 && wantHttp === wantTcp) {
    throw new WinnowError('CONFIG_INVALID', `ClickHouse HTTP and TCP ports are both ${wantHttp}`, {
      hint: 'choose two different ports',
    });
  }
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs;
  const stopTimeoutMs = opts.stopTimeoutMs ?? DEFAULTS.stopTimeoutMs;

  await mkdir(dataDir, { recursive: true });
  await mkdir(path.dirname(logFile), { recursive: true });
  await assertDataDirFree(dataDir);
  const configFile = await writeUsersConfig(dataDir, opts.users ?? [], opts.extraConfig);

  for (let attempt = 1; ; attempt++) {
    const httpPort = wantHttp === 0 ? await freePort(host) : wantHttp;
    let tcpPort = wantTcp === 0 ? await freePort(host) : wantTcp;
    while (tcpPort === httpPort) tcpPort = await freePort(host);
    if (wantHttp !== 0) await assertPortFree(httpPort, host, 'ClickHouse HTTP', portHint(httpPort, 'http'));
    if (wantTcp !== 0) await assertPortFree(tcpPort, host, 'ClickHouse TCP', portHint(tcpPort, 'tcp'));

    const config: ClickHouseChildConfig = {
      dataDir,
      host,
      httpPort,
      tcpPort,
      logFile,
      logLevel: opts.logLevel ?? 'information',
      configFile,
    };
    try {
      return await launch(config, { readyTimeoutMs, stopTimeoutMs, logger });
    } catch (err) {
      const pickedPortTaken =
        err instanceof WinnowError && err.code === 'PORT_IN_USE' && (wantHttp === 0 || wantTcp === 0);
      if (!pickedPortTaken || attempt >= PICKED_PORT_ATTEMPTS) throw err;
      logger.warn('a picked port was taken before ClickHouse bound it; picking again', { attempt, err });
    }
  }
}

interface LaunchOptions {
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  logger: Logger;
}

async function launch(config: ClickHouseChildConfig, o: LaunchOptions): Promise<RunningClickHouse> {
  const { host, httpPort, tcpPort, dataDir, logFile } = config;
  const url = `http://${urlHost(host)}:${httpPort}`;
  await appendFile(
    logFile,
    `\n=== ${new Date().toISOString()} winnow: starting embedded ClickHouse, http ${host}:${httpPort}, tcp ${tcpPort}, data ${dataDir}\n`,
  );
  const logOffset = (await stat(logFile)).size;

  const started = Date.now();
  const child = spawnChild(config);
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  // EPIPE when the child is already gone is not news; its exit is handled below.
  child.stdin?.on('error', (err) => o.logger.debug('ClickHouse stdin error', { err }));
  let exitStatus: Exit | undefined;
  void exited.then((e) => (exitStatus = e));

  let version: string;
  try {
    version = await waitReady({ url, logFile, logOffset, config, exited, spawnError, timeoutMs: o.readyTimeoutMs });
  } catch (err) {
    await killAndWait(child, exited);
    throw err;
  }
  const pid = child.pid ?? -1;
  o.logger.info('ClickHouse ready', { url, tcpPort, pid, version, ms: Date.now() - started, dataDir, logFile });

  let stopping: Promise<void> | undefined;
  void exited.then(({ code, signal }) => {
    if (!stopping) o.logger.error('ClickHouse exited unexpectedly', { pid, code, signal, logFile });
  });

  const stop = async (): Promise<void> => {
    if (exitStatus) return;
    child.stdin?.end();
    const exit = await within(exited, o.stopTimeoutMs);
    if (!exit) {
      o.logger.warn('ClickHouse did not stop in time; killing it', { pid, stopTimeoutMs: o.stopTimeoutMs });
      await killAndWait(child, exited);
    } else {
      o.logger.info('ClickHouse stopped', { pid, code: exit.code, signal: exit.signal });
    }
  };
  return {
    url,
    httpPort,
    tcpPort,
    host,
    pid,
    version,
    dataDir,
    logFile,
    stop: () => (stopping ??= stop()),
  };
}

function spawnChild(config: ClickHouseChildConfig): ChildProcess {
  const fd = openSync(config.logFile, 'a');
  try {
    return spawn(
      process.execPath,
      [...nodeScriptArgv(import.meta.url, './clickhouse-child.ts'), JSON.stringify(config)],
      {
        stdio: ['pipe', fd, fd],
        // A working directory that cannot disappear under the server (tests delete theirs).
        cwd: path.dirname(config.dataDir),
      },
    );
  } finally {
    closeSync(fd);
  }
}

interface ReadyWait {
  url: string;
  logFile: string;
  logOffset: number;
  config: ClickHouseChildConfig;
  exited: Promise<Exit>;
  spawnError: Promise<Error>;
  timeoutMs: number;
}

/** Polls /ping until it answers, then asks for the version; throws a classified error if the child dies first. */
async function waitReady(w: ReadyWait): Promise<string> {
  const deadline = Date.now() + w.timeoutMs;
  let early: { exit: Exit } | { error: Error } | undefined;
  void w.exited.then((exit) => (early ??= { exit }));
  void w.spawnError.then((error) => (early ??= { error }));

  while (Date.now() < deadline) {
    if (early) {
      if ('error' in early) {
        throw new WinnowError('PROCESS_EXITED', `could not start the ClickHouse process: ${early.error.message}`, {
          cause: early.error,
        });
      }
      throw await classifyEarlyExit(w, early.exit);
    }
    if ((await httpText(`${w.url}/ping`)) === 'Ok.\n') {
      const version = await httpText(`${w.url}/?query=${encodeURIComponent('SELECT version()')}`);
      if (version !== undefined) return version.trim();
    }
    await sleep(POLL_INTERVAL_MS);
  }
  throw new WinnowError('NOT_READY', `ClickHouse did not become ready within ${duration(w.timeoutMs)}`, {
    hint: `see ${w.logFile}`,
    retryable: true,
  });
}

async function httpText(url: string): Promise<string | undefined> {
  try {
    // No keep-alive: an idle connection would hold up the server's clean stop.
    const res = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(2_000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    // Connection refused until the listener is up: the poll tries again.
    return undefined;
  }
}

async function classifyEarlyExit(w: ReadyWait, exit: Exit): Promise<WinnowError> {
  const { config, logFile } = w;
  const output = await readLogSince(logFile, w.logOffset, 64 * 1024);
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const tail = lines.slice(-5).join('\n');
  const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;

  if (exit.code === CHILD_EXIT.libraryMissing) {
    const line = lines.reverse().find((l) => l.startsWith('winnow clickhouse-child:')) ?? tail;
    return new WinnowError('CLICKHOUSE_LIBRARY_MISSING', line.replace(/^winnow clickhouse-child: /, ''), {
      hint: 'reinstall winnow with optional dependencies, or point winnow at a ClickHouse server you run',
    });
  }
  // ClickHouse reports its errors as "Code: N. DB::Exception: ...". 76 is
  // CANNOT_OPEN_FILE, raised for any file; only the lock of the status file
  // means another instance, so the text has to be matched too.
  if (output.includes(`Code: 76. DB::Exception: Cannot lock file ${path.join(config.dataDir, 'status')}.`)) {
    return dataDirLocked(config.dataDir, await statusPid(config.dataDir));
  }
  // 210 is NETWORK_ERROR: "Listen [host]:port failed: ... Address already in use".
  const listen = /Code: 210\..*Listen \[[^\]]*\]:(\d+) failed.*Address already in use/.exec(output);
  if (listen) {
    const port = Number(listen[1]);
    const kind = port === config.tcpPort ? 'tcp' : 'http';
    return new WinnowError(
      'PORT_IN_USE',
      `ClickHouse ${kind.toUpperCase()} port ${port} on ${config.host} is already in use`,
      {
        hint: portHint(port, kind),
      },
    );
  }
  // The cause is the exception ClickHouse printed, not whatever it logged while shutting down.
  const cause = [...lines].reverse().find((l) => /DB::Exception|<Error>|<Fatal>/.test(l));
  return new WinnowError('PROCESS_EXITED', `ClickHouse exited (${how}) before it was ready:\n${cause ?? tail}`, {
    hint: `see ${logFile}`,
  });
}

async function killAndWait(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  child.kill('SIGKILL');
  const exit = await within(exited, KILL_WAIT_MS);
  if (!exit)
    throw new WinnowError('INTERNAL', `ClickHouse process ${child.pid} survived SIGKILL for ${KILL_WAIT_MS} ms`);
}

/** The promise's value, or undefined once ms have passed (without keeping the event loop alive after). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- small helpers ----------------------------------------------------------

function loopbackHost(host: string): string {
  if (host === 'localhost') return '127.0.0.1';
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1') return host;
  throw new WinnowError('CONFIG_INVALID', `the embedded ClickHouse listens on loopback only, not on ${host}`, {
    hint: 'its default user has no password; use 127.0.0.1, or run your own ClickHouse server for other hosts',
  });
}

function checkPort(name: string, port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WinnowError('CONFIG_INVALID', `ClickHouse ${name} must be an integer from 0 to 65535, not ${port}`);
  }
  return port;
}

function portHint(port: number, kind: 'http' | 'tcp'): string {
  return `stop whatever listens there (ss -ltnp | grep :${port}) or choose another port with --clickhouse-${kind}-port`;
}

function duration(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
