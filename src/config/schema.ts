/**
 * zod schemas of the config file. Every object is strict (an unknown key is a
 * typo until proven otherwise), every error message states the expected form,
 * and defaults come from DEFAULTS. The output types are declared by hand in
 * types.ts; the assertion at the bottom keeps the two in step.
 */
import { z } from 'zod';
import { checkConfig, checkPipeline, checkSource } from './checks.ts';
import { DEFAULTS, LIMITS } from './defaults.ts';
import { DURATION_FORM, formatDuration, tryParseDuration } from './duration.ts';
import { BROKER, ENV_NAME, IDENTIFIER, PIPELINE_NAME, PROTOCOLS, SASL_MECHANISMS, TOPIC_NAME } from './rules.ts';
import {
  checkEngineText,
  checkExpressionText,
  checkTypeText,
  describeSqlTextProblem,
  EXPR_FIX,
  PARTITION_FIX,
  type SqlTextProblem,
} from './sql-text.ts';
import type { ColumnConfig, DedupTime, Env, PipelineConfig, WinnowConfig } from './types.ts';

export type * from './types.ts';
export { DEFAULTS, LIMITS } from './defaults.ts';

export * from './rules.ts';

/**
 * An error parameter whose message is the expected form. The formatter appends
 * what was found (", got ..."), except for secrets.
 */
function expected(form: string): { error: (iss: { code?: string; input?: unknown }) => string } {
  return {
    error: (iss) =>
      iss.code === 'invalid_type' && iss.input === undefined ? `required; expected ${form}` : `expected ${form}`,
  };
}

/**
 * z.strictObject whose unknown-key message lists the keys allowed there. One
 * line per unknown key, in the order of `issue.keys`; formatIssues pairs them.
 */
function strictObject<S extends z.core.$ZodLooseShape>(shape: S) {
  const allowed = Object.keys(shape);
  const form = `a mapping with keys ${allowed.join(', ')}`;
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        return iss.keys
          .map((k) => `unknown key${didYouMean(k, allowed)}; expected one of ${allowed.join(', ')}`)
          .join('\n');
      }
      return expected(form).error(iss);
    },
  });
}

/** ` (did you mean "window"?)` when one allowed key is a near miss. */
function didYouMean(key: string, allowed: string[]): string {
  const near = allowed.filter((a) => a.toLowerCase() === key.toLowerCase() || editDistance(a, key) <= 2);
  return near.length === 1 ? ` (did you mean "${near[0]}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

function text(form: string, pattern?: RegExp) {
  const e = expected(form);
  return pattern ? z.string(e).regex(pattern, e) : z.string(e).min(1, e);
}

/**
 * Text winnow puts into SQL as it is (trusted SQL): `check` keeps it to one
 * type, expression or engine (sql-text.ts); the message names the value, the
 * problem and the fix.
 */
function sqlText(form: string, check: (s: string) => SqlTextProblem | undefined) {
  return z.string(expected(form)).superRefine((s, ctx) => {
    const problem = check(s);
    if (problem) ctx.addIssue({ code: 'custom', message: describeSqlTextProblem(s, problem) });
  });
}

const identifier = (what: string) => text(`${what}: letters, digits and _, not starting with a digit`, IDENTIFIER);

function integer(min: number, max: number, form: string) {
  const e = expected(form);
  return z.number(e).int(e).min(min, e).max(max, e);
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, expected(`one of ${values.join(', ')}`));
}

/** A non-empty list; a single string stands for a list of one. */
function list<T extends z.ZodType<string>>(item: T, form: string) {
  const e = expected(form);
  return z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(item, e).min(1, e));
}

/** A duration string, to milliseconds, within bounds. */
function duration(bounds: { above?: number; min?: number; max?: number }) {
  return z.string(expected(DURATION_FORM)).transform((s, ctx) => {
    const ms = tryParseDuration(s);
    const fail = (form: string) => {
      ctx.addIssue({ code: 'custom', message: `expected ${form}`, input: s });
      return z.NEVER;
    };
    if (ms === undefined) return fail(DURATION_FORM);
    if (bounds.above !== undefined && ms <= bounds.above)
      return fail(`a duration above ${formatDuration(bounds.above)}`);
    if (bounds.min !== undefined && ms < bounds.min)
      return fail(`a duration of at least ${formatDuration(bounds.min)}`);
    if (bounds.max !== undefined && ms > bounds.max) return fail(`a duration of at most ${formatDuration(bounds.max)}`);
    return ms;
  });
}

/**
 * A literal string or `{ env: NAME }`. With `env` given, a variable that is
 * not set is an error here, at load time, rather than at first use.
 */
function secret(env: Env | undefined) {
  const form = 'a non-empty string or { env: NAME } (quote numbers)';
  const reference = strictObject({ env: text('an environment variable name like KAFKA_PASSWORD', ENV_NAME) });
  return z.union([z.string().min(1, expected(form)), reference], expected(form)).superRefine((v, ctx) => {
    if (env !== undefined && typeof v === 'object' && env[v.env] === undefined) {
      ctx.addIssue({ code: 'custom', message: `environment variable ${v.env} is not set` });
    }
  });
}

const timeSchema = z
  .union(
    [z.literal('kafka'), z.literal('ingestion'), strictObject({ column: identifier('a column name') })],
    expected('kafka, ingestion or { column: <name of a Date/DateTime column> }'),
  )
  .transform((t): DedupTime => (typeof t === 'string' ? { kind: t } : { kind: 'column', column: t.column }));

const columnSchema = strictObject({
  name: identifier('a column name'),
  type: sqlText('a ClickHouse type like String, DateTime64(3) or Nullable(Int64)', checkTypeText),
  path: z
    .union(
      [text('a field path like user.name', /^[^.]+(\.[^.]+)*$/), z.array(z.string().min(1)).min(1)],
      expected('a field path like user.name, or a list of field names'),
    )
    .optional(),
  expr: sqlText('a ClickHouse expression over _raw and the Kafka virtual columns', (e) =>
    checkExpressionText(e, EXPR_FIX),
  ).optional(),
  optional: z.boolean(expected('true or false')).default(DEFAULTS.column.optional),
})
  .superRefine(
    // Runs even when other keys failed (`when`), so `c` may be anything.
    (c: unknown, ctx) => {
      const col = typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : {};
      if (col['path'] !== undefined && col['expr'] !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['expr'], message: 'give either path or expr, not both' });
      }
    },
    { when: () => true },
  )
  .transform((c): ColumnConfig => ({
    name: c.name,
    type: c.type,
    source:
      c.expr !== undefined
        ? { kind: 'expr', expr: c.expr }
        : { kind: 'path', path: typeof c.path === 'string' ? c.path.split('.') : (c.path ?? [c.name]) },
    optional: c.optional,
  }));

const BROKER_FORM = 'a broker address host:port with a port from 1 to 65535';

/**
 * The schema of a whole config file. With `env`, `{ env: NAME }` secrets must
 * name a variable set there; without, they are only checked for shape.
 */
export function createConfigSchema(env?: Env) {
  const source = strictObject({
    brokers: list(
      z
        .string(expected(BROKER_FORM))
        .refine((b) => BROKER.test(b) && Number(b.slice(b.lastIndexOf(':') + 1)) <= 65535, expected(BROKER_FORM)),
      'a list of broker addresses host:port',
    ),
    topics: list(text('a Kafka topic name: up to 249 of A-Z a-z 0-9 . _ -', TOPIC_NAME), 'a list of topic names'),
    auth: strictObject({
      protocol: oneOf(PROTOCOLS).default(DEFAULTS.source.auth.protocol),
      mechanism: oneOf(SASL_MECHANISMS).optional(),
      username: text('a user name').optional(),
      password: secret(env).optional(),
    }).prefault({}),
    tls: strictObject({ ca: text('a path to a PEM CA file').optional() }).optional(),
    consumerGroup: text('a consumer group name: up to 249 of A-Z a-z 0-9 . _ -', TOPIC_NAME).optional(),
    initialOffset: oneOf(['earliest', 'latest']).default(DEFAULTS.source.initialOffset),
    consumers: integer(1, LIMITS.maxConsumers, `an integer from 1 to ${LIMITS.maxConsumers}`).default(
      DEFAULTS.source.consumers,
    ),
  }).superRefine(checkSource, { when: () => true });

  const dedup = strictObject({
    key: list(identifier('a column name'), 'a list of column names').default(() => [...DEFAULTS.dedup.key]),
    window: duration({ above: 0, max: LIMITS.maxWindowMs }),
    time: timeSchema.default(() => ({ ...DEFAULTS.dedup.time })),
    index: oneOf(['scan', 'rocksdb']).default(DEFAULTS.dedup.index),
  }).transform(({ key, window, time, index }) => ({ key, windowMs: window, time, index }));

  const sinkUrl = text('an http(s) URL like http://localhost:8123').refine(
    (u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol) && !new URL(u).username && !new URL(u).password,
    expected('an http(s) URL like http://localhost:8123, without credentials (use sink.user and sink.password)'),
  );
  const sink = strictObject({
    url: sinkUrl.default(DEFAULTS.sink.url),
    user: text('a ClickHouse user name').default(DEFAULTS.sink.user),
    password: secret(env).optional(),
    database: identifier('a database name').default(DEFAULTS.sink.database),
    table: identifier('a table name'),
    mode: oneOf(['create', 'adopt']).default(DEFAULTS.sink.mode),
    engine: sqlText('a table engine like MergeTree or ReplicatedMergeTree(...)', checkEngineText).default(
      DEFAULTS.sink.engine,
    ),
    orderBy: list(identifier('a column name'), 'a list of column names').optional(),
    partitionBy: sqlText('a ClickHouse expression like toYYYYMM(created_at)', (e) =>
      checkExpressionText(e, PARTITION_FIX),
    ).optional(),
  });

  const schedule = strictObject({
    interval: duration({ min: LIMITS.minIntervalMs }).default(DEFAULTS.schedule.intervalMs),
    maxSliceRows: integer(1, Number.MAX_SAFE_INTEGER, 'a positive integer').default(DEFAULTS.schedule.maxSliceRows),
    checkInterval: duration({ min: LIMITS.minCheckIntervalMs }).default(DEFAULTS.schedule.checkIntervalMs),
  })
    .prefault({})
    .transform((s) => ({ intervalMs: s.interval, maxSliceRows: s.maxSliceRows, checkIntervalMs: s.checkInterval }));

  const pipeline = strictObject({
    name: text(
      `a pipeline name: a lowercase letter, then up to ${LIMITS.maxPipelineNameLength - 1} of a-z 0-9 _`,
      PIPELINE_NAME,
    ),
    source,
    columns: z.array(columnSchema, expected('a list of columns')).min(1, expected('a non-empty list of columns')),
    dedup,
    sink,
    schedule,
    api: strictObject({ replayToken: secret(env).optional() }).prefault({}),
  })
    .superRefine(checkPipeline, { when: () => true })
    .transform((p): PipelineConfig => ({
      name: p.name,
      source: {
        ...p.source,
        consumerGroup: p.source.consumerGroup ?? `${DEFAULTS.source.consumerGroupPrefix}${p.name}`,
      },
      columns: p.columns,
      dedup: p.dedup,
      sink: { ...p.sink, orderBy: p.sink.orderBy ?? [...p.dedup.key] },
      schedule: p.schedule,
      api: p.api,
    }));

  return strictObject({
    server: strictObject({
      port: integer(0, 65535, 'a TCP port from 0 to 65535 (0 picks a free port)').default(DEFAULTS.server.port),
    }).prefault({}),
    pipelines: z.array(pipeline, expected('a list of pipelines')).min(1, expected('a non-empty list of pipelines')),
  }).superRefine(checkConfig, { when: () => true });
}

// The schema's output is exactly the declared types, in both directions.
type Output = z.output<ReturnType<typeof createConfigSchema>>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const outputMatchesTypes: Same<Output, WinnowConfig> = true;
void outputMatchesTypes;
