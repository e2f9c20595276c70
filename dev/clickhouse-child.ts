/**
 * The process that runs the embedded ClickHouse (spawned by clickhouse.ts, never
 * by hand). libchdb is clickhouse-local; since 26.x it can open real HTTP and TCP
 * listeners, but only through `chdb_query_cmdline`, and only while that call's
 * query runs. So the last statement reads this process's stdin to its end: the
 * parent holds the pipe open, and closing it (or dying) stops the server.
 *
 * The call blocks the main thread for the server's whole life, which is why it
 * lives in its own process and why no JavaScript runs here after it starts.
 */
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface ClickHouseChildConfig {
  dataDir: string;
  host: string;
  httpPort: number;
  tcpPort: number;
  /** ClickHouse's own log; the parent also appends this process's stdout/stderr to it. */
  logFile: string;
  logLevel: 'error' | 'warning' | 'information' | 'debug' | 'trace';
  /** A config.xml whose users_config adds password users; absent when there are none. */
  configFile?: string;
}

/** Exit codes the parent maps to error codes. */
export const CHILD_EXIT = { ok: 0, clickhouseFailed: 1, badConfig: 2, libraryMissing: 3 } as const;

/** The npm package that ships libchdb for each platform, as the `chdb` package chooses them. */
export const LIBRARY_PACKAGES: Readonly<Record<string, string>> = {
  'linux-x64': '@chdb/lib-linux-x64-gnu',
  'linux-arm64': '@chdb/lib-linux-arm64-gnu',
  'darwin-arm64': '@chdb/lib-darwin-arm64',
  'darwin-x64': '@chdb/lib-darwin-x64',
};

// Every platform package ships the library as libchdb.so, darwin included
// (chdb-node scripts/build-platform-pkg.sh copies the same file name).
const LIBRARY_FILE = 'libchdb.so';

const require = createRequire(import.meta.url);

function fail(code: number, message: string): never {
  process.stderr.write(`winnow clickhouse-child: ${message}\n`);
  process.exit(code);
}

function parseConfig(raw: string | undefined): ClickHouseChildConfig {
  if (!raw)
    fail(CHILD_EXIT.badConfig, 'expected the configuration as a JSON argument; this process is started by winnow');
  try {
    const cfg = JSON.parse(raw) as ClickHouseChildConfig;
    const ok =
      typeof cfg.dataDir === 'string' &&
      typeof cfg.host === 'string' &&
      Number.isInteger(cfg.httpPort) &&
      Number.isInteger(cfg.tcpPort) &&
      typeof cfg.logFile === 'string' &&
      typeof cfg.logLevel === 'string';
    if (!ok) fail(CHILD_EXIT.badConfig, `incomplete configuration: ${raw}`);
    return cfg;
  } catch (err) {
    fail(CHILD_EXIT.badConfig, `configuration is not JSON (${(err as Error).message}): ${raw}`);
  }
}

export function resolveLibrary(
  platform = process.platform,
  arch = process.arch,
): { path: string } | { missing: string } {
  const key = `${platform}-${arch}`;
  const pkg = LIBRARY_PACKAGES[key];
  if (!pkg) {
    return {
      missing: `there is no embedded ClickHouse build for ${key} (supported: ${Object.keys(LIBRARY_PACKAGES).join(', ')}); point winnow at a ClickHouse server instead`,
    };
  }
  try {
    return { path: require.resolve(`${pkg}/${LIBRARY_FILE}`) };
  } catch (err) {
    return {
      missing:
        `the embedded ClickHouse needs the npm package ${pkg}, which is not installed (${(err as Error).message.split('\n')[0]}). ` +
        `Install it with \`npm install ${pkg}\` (it is an optional dependency: installs with --omit=optional or --no-optional skip it)`,
    };
  }
}

/**
 * Why the embedded ClickHouse cannot start here, in one line, or undefined when its two optional
 * dependencies (the platform's @chdb/lib-* package and ffi-rs) are installed. `winnow dev up` asks this
 * first: an install without optional dependencies (`npm install --omit=optional`, the Docker image) has neither.
 */
export function embeddedClickHouseMissing(): string | undefined {
  const lib = resolveLibrary();
  if ('missing' in lib) return lib.missing;
  try {
    require.resolve('ffi-rs');
  } catch {
    return 'the embedded ClickHouse needs the npm package ffi-rs, which is not installed. Install it with `npm install ffi-rs` (it is an optional dependency: installs with --omit=optional or --no-optional skip it)';
  }
  return undefined;
}

export function clickhouseArgv(cfg: ClickHouseChildConfig): string[] {
  return [
    'clickhouse',
    `--path=${cfg.dataDir}`,
    `--listen_host=${cfg.host}`,
    `--http_port=${cfg.httpPort}`,
    `--tcp_port=${cfg.tcpPort}`,
    ...(cfg.configFile ? [`--config-file=${cfg.configFile}`] : []),
    // clickhouse-local ignores --logger.level once --logger.log is set (it logs
    // at trace); --log-level is the switch it honours.
    `--logger.log=${cfg.logFile}`,
    `--log-level=${cfg.logLevel}`,
    // The last statement ends when stdin reaches EOF; the listeners live until
    // then. `file(stdin)` reads fd 0 itself: Node gives a child a socket, not a
    // pipe, as stdin, and opening '/dev/stdin' on a socket fails (ENXIO).
    "--query=SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; SELECT count() FROM file(stdin, 'LineAsString')",
    // Server settings go after `--`. On stop, ClickHouse waits up to 5 s for open
    // connections, idle keep-alive ones included, then exits without shutting
    // its tables down; the 26.x default of 30 s keeps idle client sockets that
    // long. 3 s (the long-time default, and above @clickhouse/client's 2.5 s
    // idle socket TTL) lets a stop finish cleanly.
    '--',
    '--keep_alive_timeout=3',
  ];
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv[2]);
  const lib = resolveLibrary();
  if ('missing' in lib) fail(CHILD_EXIT.libraryMissing, lib.missing);

  let ffi: typeof import('ffi-rs');
  try {
    ffi = await import('ffi-rs');
  } catch (err) {
    fail(
      CHILD_EXIT.libraryMissing,
      `the embedded ClickHouse needs the npm package ffi-rs, which did not load (${(err as Error).message.split('\n')[0]}). Install it with \`npm install ffi-rs\``,
    );
  }
  const { DataType } = ffi;

  // The terminal's Ctrl+C reaches the whole process group; the parent decides
  // when the server stops (it closes stdin), so this process ignores SIGINT.
  // While the blocking call runs no JavaScript runs, so the handler only keeps
  // Node's default (exit) from applying.
  process.on('SIGINT', () => undefined);

  try {
    ffi.open({ library: 'chdb', path: lib.path });
  } catch (err) {
    fail(CHILD_EXIT.libraryMissing, `could not load ${lib.path}: ${(err as Error).message}`);
  }
  const call = <T extends import('ffi-rs').FieldType>(
    funcName: string,
    retType: T,
    paramsType: import('ffi-rs').FieldType[],
    paramsValue: unknown[],
  ) => ffi.load({ library: 'chdb', funcName, retType, paramsType, paramsValue });

  const argv = clickhouseArgv(cfg);
  process.stderr.write(
    `winnow clickhouse-child: pid ${process.pid}, library ${lib.path}, http ${cfg.host}:${cfg.httpPort}, tcp ${cfg.tcpPort}\n`,
  );
  const result = call(
    'chdb_query_cmdline',
    DataType.External,
    [DataType.I32, DataType.StringArray],
    [argv.length, argv],
  );

  // Errors come back two ways: argument errors as the result's error text;
  // query errors are printed on stderr by ClickHouse and leave the output empty.
  // A clean stop leaves exactly the stdin line count as output.
  let error: string | undefined;
  let output = '';
  if (ffi.isNullPointer(result)) {
    error = 'chdb_query_cmdline returned no result';
  } else {
    const errPtr = call('chdb_result_error', DataType.External, [DataType.External], [result]);
    if (!ffi.isNullPointer(errPtr)) {
      const [text] = ffi.restorePointer({ retType: [DataType.String], paramsValue: ffi.wrapPointer([errPtr]) });
      error = String(text);
    }
    const length = call('chdb_result_length', DataType.U64, [DataType.External], [result]);
    if (length > 0) {
      const buf = call('chdb_result_buffer', DataType.External, [DataType.External], [result]);
      output = Buffer.from(ffi.createExternalBuffer(buf, length)).toString('utf8');
    }
    call('chdb_destroy_query_result', DataType.Void, [DataType.External], [result]);
  }
  if (error !== undefined) fail(CHILD_EXIT.clickhouseFailed, `ClickHouse failed: ${error}`);
  if (!/^\d+\s*$/.test(output)) {
    fail(CHILD_EXIT.clickhouseFailed, 'ClickHouse stopped with an error (see the lines above)');
  }
  process.stderr.write(`winnow clickhouse-child: stdin closed, ClickHouse stopped\n`);
  process.exit(CHILD_EXIT.ok);
}

// Only run as the entry point; clickhouse.ts imports the constants above.
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    // An entry path that cannot be resolved is not this file.
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) =>
    fail(CHILD_EXIT.clickhouseFailed, `unexpected failure: ${(err as Error).stack ?? String(err)}`),
  );
}
