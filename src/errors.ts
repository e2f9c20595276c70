/**
 * Typed errors with stable codes. Every error a user can meet says what went
 * wrong (message) and what to do about it (hint); `retryable` tells the
 * controller whether trying the same step again can succeed.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'PORT_IN_USE'
  | 'DATA_DIR_LOCKED'
  | 'NOT_READY'
  | 'JAVA_MISSING'
  | 'MAVEN_MISSING'
  | 'DOWNLOAD_FAILED'
  | 'PROCESS_EXITED'
  | 'CLICKHOUSE_LIBRARY_MISSING'
  | 'CLICKHOUSE'
  | 'KAFKA'
  | 'MIGRATION'
  | 'TABLE_MISMATCH'
  | 'DEDUP_UNSAFE'
  | 'NOT_FOUND'
  | 'UNAUTHORIZED'
  | 'CONFLICT'
  | 'REPAIR_INCOMPLETE'
  | 'INJECTED_FAULT'
  | 'INTERNAL';

export class WinnowError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'WinnowError';
    this.code = code;
    this.hint = opts.hint;
    this.retryable = opts.retryable ?? false;
  }
}

/** One line for a terminal: the cause, then the fix. */
export function describeError(err: unknown): string {
  if (err instanceof WinnowError) {
    return err.hint ? `${err.message} (${err.hint})` : err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The messages of an error's causes, outermost first, one line each (for --verbose). */
export function causeChain(err: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  let cur = err instanceof Error ? err.cause : undefined;
  while (cur !== undefined && cur !== null && !seen.has(cur) && out.length < 10) {
    seen.add(cur);
    const e = cur as { name?: unknown; code?: unknown; message?: unknown };
    const msg = typeof e.message === 'string' ? e.message : JSON.stringify(cur);
    const code = typeof e.code === 'string' || typeof e.code === 'number' ? ` ${String(e.code)}` : '';
    out.push(`${typeof e.name === 'string' ? e.name : 'Error'}${code}: ${msg.split('\n')[0] ?? msg}`);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

/**
 * A stable name for the kind of an error, for /readyz: the WinnowError code,
 * with ClickHouse's error type or the network error code when the cause is
 * ClickHouse (`CLICKHOUSE/ACCESS_DENIED`, `CLICKHOUSE/ECONNREFUSED`), else
 * the error's name.
 */
export function errorClass(err: unknown): string {
  let detail: string | undefined;
  const seen = new Set<unknown>();
  for (let cur: unknown = err; cur instanceof Error && !seen.has(cur) && detail === undefined; cur = cur.cause) {
    seen.add(cur);
    const c = cur as { chType?: unknown; netCode?: unknown };
    if (typeof c.chType === 'string') detail = c.chType;
    else if (typeof c.netCode === 'string') detail = c.netCode;
  }
  if (err instanceof WinnowError) return err.code === 'CLICKHOUSE' && detail ? `CLICKHOUSE/${detail}` : err.code;
  if (err instanceof Error) return err.name;
  return typeof err;
}

/**
 * Without the row values ClickHouse quotes in some errors (`Column values:
 * event_id = '...'` of a violated constraint): what /readyz and the stats show
 * must not carry data.
 */
export function withoutRowValues(message: string): string {
  // From `Column values: ` to what ends the message: a period, a parenthesis, ClickHouse's ` (CODE) (version ...)`.
  const values = /Column values: [^\n]*?(?=\.?\)?(?: \([A-Z_]+\))?(?: \(version [^)]*\))?$)/gm;
  return message.replace(values, 'Column values: (omitted)');
}
