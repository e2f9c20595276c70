/**
 * The one narrow interface through which winnow talks to ClickHouse. Errors
 * come out typed: ClickHouse's numeric code decides whether a retry can help,
 * never the message text.
 */
import { createClient, ClickHouseError, ClickHouseLogLevel, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { WinnowError } from '../errors.ts';

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
  ACCESS_DENIED: 497,
} as const;

export class ClickHouseFailure extends WinnowError {
  readonly chCode: number | undefined;
  constructor(message: string, chCode: number | undefined, retryable: boolean, cause: unknown) {
    super('CLICKHOUSE', message, { retryable, cause });
    this.chCode = chCode;
  }
}

export function classify(err: unknown, what: string): WinnowError {
  if (err instanceof WinnowError) return err;
  if (err instanceof ClickHouseError) {
    const code = Number(err.code);
    const hint =
      code === CH.AUTHENTICATION_FAILED
        ? 'check sink.user and sink.password'
        : code === CH.ACCESS_DENIED
          ? 'sink.user lacks the grant named; README "Grants" lists the grants of each command'
          : undefined;
    const e = new ClickHouseFailure(`${what}: ClickHouse error ${code} (${err.type ?? 'unknown'}): ${firstLine(err.message)}`, code, RETRYABLE_CODES.has(code), err);
    return hint ? Object.assign(e, { hint }) : e;
  }
  const netCode = (err as { code?: string }).code;
  if (netCode && RETRYABLE_NET.has(netCode)) {
    return new ClickHouseFailure(`${what}: cannot reach ClickHouse (${netCode})`, undefined, true, err);
  }
  const msg = err instanceof Error ? err.message : String(err);
  const retryable = /socket hang up|ECONNRESET|ECONNREFUSED|Timeout error|other side closed/i.test(msg);
  return new ClickHouseFailure(`${what}: ${firstLine(msg)}`, undefined, retryable, err);
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
    // Every failure comes back typed (classify) and is reported once by its caller; the
    // client's own error log would print each one again, with its stack and settings.
    log: { level: ClickHouseLogLevel.OFF },
    // Progress headers keep long slice inserts from looking idle to proxies and to the client.
    clickhouse_settings: { send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '60000', ...opts.settings },
  });
  const short = (sql: string): string => sql.replace(/\s+/g, ' ').slice(0, 80);
  return {
    url: opts.url,
    async command(sql, params, settings) {
      try {
        const r = await client.command({ query: sql, query_params: params ?? {}, clickhouse_settings: settings ?? {} });
        return summaryOf(r.summary as Record<string, string> | undefined);
      } catch (err) {
        throw classify(err, short(sql));
      }
    },
    async rows<T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings) {
      try {
        const rs = await client.query({ query: sql, query_params: params ?? {}, format: 'JSONEachRow', clickhouse_settings: settings ?? {} });
        return await rs.json<T>();
      } catch (err) {
        throw classify(err, short(sql));
      }
    },
    async ping() {
      const r = await client.ping();
      return r.success;
    },
    close: () => client.close(),
  };
}
