/**
 * The one narrow interface through which winnow talks to ClickHouse. Errors
 * come out typed: ClickHouse's numeric code decides whether a retry can help,
 * never the message text.
 */
import {
  createClient,
  ClickHouseError,
  ClickHouseLogLevel,
  type ClickHouseClient,
  type ClickHouseSettings,
  type ErrorLogParams,
  type Logger as ClientLogger,
  type LogParams,
  type WarnLogParams,
} from '@clickhouse/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { WinnowError } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface QuerySummary {
  readRows: number;
  writtenRows: number;
  elapsedMs: number;
  memoryBytes: number;
}

export interface Db {
  readonly url: string;
  command(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<QuerySummary>;
  rows<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<T[]>;
  /** The text a statement prints in its own format (CHECK GRANT takes no FORMAT clause); fakes may leave it out. */
  text?(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<string>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** ClickHouse error codes after which the same statement can succeed if retried. */
const RETRYABLE_CODES = new Set([
  3, // UNEXPECTED_END_OF_FILE
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (replica restarting)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  473, // DEADLOCK_AVOIDED
  999, // KEEPER_EXCEPTION
]);
const RETRYABLE_NET = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);

export const CH = {
  UNKNOWN_TABLE: 60,
  UNKNOWN_DATABASE: 81,
  TABLE_ALREADY_EXISTS: 57,
  AUTHENTICATION_FAILED: 516,
  REQUIRED_PASSWORD: 194,
  ACCESS_DENIED: 497,
} as const;

export class ClickHouseFailure extends WinnowError {
  readonly chCode: number | undefined;
  /** ClickHouse's name of the error (ACCESS_DENIED, ...) when the server answered */
  readonly chType: string | undefined;
  /** the network error code (ECONNREFUSED, ...) when it did not */
  readonly netCode: string | undefined;
  constructor(
    message: string,
    chCode: number | undefined,
    retryable: boolean,
    cause: unknown,
    detail: { chType?: string; netCode?: string; hint?: string } = {},
  ) {
    super('CLICKHOUSE', message, { retryable, cause, ...(detail.hint ? { hint: detail.hint } : {}) });
    this.chCode = chCode;
    this.chType = detail.chType;
    this.netCode = detail.netCode;
  }
}

/** Network failures in words. */
const NET_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  UND_ERR_SOCKET: 'connection closed',
};

/**
 * A typed error for a failed request. `where` names what was asked, as the
 * configuration says it (`sink.url http://...`): the statement is never part of
 * the message (it says nothing to an operator and can be long); ClickHouse's
 * own words are, on one line.
 */
export function classify(err: unknown, where: string): WinnowError {
  if (err instanceof WinnowError) return err;
  if (err instanceof ClickHouseError) {
    const code = Number(err.code);
    const type = err.type ?? 'unknown';
    const login = code === CH.AUTHENTICATION_FAILED || code === CH.REQUIRED_PASSWORD;
    const message = `${where}: ClickHouse error ${code} (${type}): ${firstLine(err.message)}`;
    const hint = login
      ? 'check sink.user and sink.password'
      : code === CH.ACCESS_DENIED
        ? 'sink.user lacks the grant named; README "Grants" lists the grants of each command'
        : undefined;
    return new ClickHouseFailure(message, code, RETRYABLE_CODES.has(code), err, {
      chType: type,
      ...(hint ? { hint } : {}),
    });
  }
  const netCode = (err as { code?: unknown }).code;
  if (typeof netCode === 'string' && NET_WORDS[netCode]) {
    const message = `${where}: cannot reach ClickHouse: ${NET_WORDS[netCode]} (${netCode})`;
    return new ClickHouseFailure(message, undefined, RETRYABLE_NET.has(netCode), err, { netCode });
  }
  const msg = err instanceof Error ? err.message : String(err);
  if (/^Timeout error/i.test(msg)) {
    const message = `${where}: no answer from ClickHouse within the request timeout`;
    return new ClickHouseFailure(message, undefined, true, err, { netCode: 'TIMEOUT' });
  }
  const retryable = /socket hang up|ECONNRESET|ECONNREFUSED|other side closed/i.test(msg);
  return new ClickHouseFailure(`${where}: ${firstLine(msg)}`, undefined, retryable, err);
}

/**
 * A read (`rows`) whose connection broke (reset, broken pipe, closed mid-answer)
 * is asked again after these pauses: a read changes nothing, and one reset
 * should not fail a daemon tick of ten requests and start its back-off. Not
 * after a refused connection (the server is down: the caller's back-off
 * handles that) nor a timeout (the query may still run), and never a write
 * (`command`, `text`): how a write is re-run is its caller's protocol.
 */
const READ_RETRY_PAUSES_MS = [50, 250];

function connectionBroke(err: unknown): boolean {
  if (err instanceof ClickHouseError) return false;
  const code = (err as { code?: unknown }).code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /socket hang up|ECONNRESET|other side closed/i.test(msg);
}

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? s;
  return line.length > 500 ? line.slice(0, 500) + '…' : line;
}

function summaryOf(s: Record<string, string> | undefined): QuerySummary {
  return {
    readRows: Number(s?.['read_rows'] ?? 0),
    writtenRows: Number(s?.['written_rows'] ?? 0),
    elapsedMs: Number(s?.['elapsed_ns'] ?? 0) / 1e6,
    memoryBytes: Number(s?.['memory_usage'] ?? 0),
  };
}

export interface DbOptions {
  url: string;
  /** how errors name this server, as the configuration does; default `ClickHouse <url>` */
  where?: string;
  /** where the client's own log goes (default: nowhere) */
  logger?: Logger;
  user?: string;
  password?: string;
  database?: string;
  requestTimeoutMs?: number;
  settings?: ClickHouseSettings;
}

export function connect(opts: DbOptions): Db {
  const client: ClickHouseClient = createClient({
    url: opts.url,
    username: opts.user ?? 'default',
    password: opts.password ?? '',
    ...(opts.database ? { database: opts.database } : {}),
    request_timeout: opts.requestTimeoutMs ?? 300_000,
    // Through winnow's logger, as JSON. Every failed request comes back typed (classify) and is
    // reported once by its caller, so the client's own error lines about it are debug lines.
    log: opts.logger
      ? { level: ClickHouseLogLevel.WARN, LoggerClass: clientLogger(opts.logger) }
      : { level: ClickHouseLogLevel.OFF },
    // Progress headers keep long slice inserts from looking idle to proxies and to the client.
    clickhouse_settings: {
      send_progress_in_http_headers: 1,
      http_headers_progress_interval_ms: '60000',
      ...opts.settings,
    },
  });
  const where = opts.where ?? `ClickHouse ${opts.url}`;
  return {
    url: opts.url,
    async command(sql, params, settings) {
      try {
        const r = await client.command({ query: sql, query_params: params ?? {}, clickhouse_settings: settings ?? {} });
        return summaryOf(r.summary as Record<string, string> | undefined);
      } catch (err) {
        throw classify(err, where);
      }
    },
    async rows<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings) {
      for (let attempt = 0; ; attempt++) {
        try {
          const rs = await client.query({
            query: sql,
            query_params: params ?? {},
            format: 'JSONEachRow',
            clickhouse_settings: settings ?? {},
          });
          return await rs.json<T>();
        } catch (err) {
          const pause = READ_RETRY_PAUSES_MS[attempt];
          if (pause === undefined || !connectionBroke(err)) throw classify(err, where);
          opts.logger?.debug('ClickHouse read: connection broke, asking again', {
            error: firstLine(err instanceof Error ? err.message : String(err)),
            attempt: attempt + 1,
          });
          await sleep(pause);
        }
      }
    },
    async text(sql, params, settings) {
      try {
        const r = await client.exec({ query: sql, query_params: params ?? {}, clickhouse_settings: settings ?? {} });
        const chunks: Buffer[] = [];
        for await (const chunk of r.stream) chunks.push(Buffer.from(chunk as Uint8Array));
        return Buffer.concat(chunks).toString('utf8');
      } catch (err) {
        throw classify(err, where);
      }
    },
    async ping() {
      const r = await client.ping();
      return r.success;
    },
    close: () => client.close(),
  };
}

/** The ClickHouse client's logger class, writing to winnow's logger; never its args (they hold query parameters). */
function clientLogger(logger: Logger): new () => ClientLogger {
  const fields = (p: LogParams & { err?: Error }): Record<string, unknown> => ({
    module: p.module,
    ...(p.err ? { error: p.err.message.split('\n')[0] } : {}),
  });
  return class implements ClientLogger {
    trace(p: LogParams): void {
      logger.debug(`ClickHouse client: ${p.message}`, fields(p));
    }
    debug(p: LogParams): void {
      logger.debug(`ClickHouse client: ${p.message}`, fields(p));
    }
    info(p: LogParams): void {
      logger.debug(`ClickHouse client: ${p.message}`, fields(p));
    }
    warn(p: WarnLogParams): void {
      logger.warn(`ClickHouse client: ${p.message}`, fields(p));
    }
    error(p: ErrorLogParams): void {
      logger.debug(`ClickHouse client: ${p.message}`, fields(p));
    }
  };
}
