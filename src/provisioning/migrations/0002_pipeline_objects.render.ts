/**
 * Why one file over 300 lines: a frozen copy of 0002's builders as it last shipped; it is never edited, so it is not split.
 *
 * FROZEN: how 0002 rendered a pipeline's objects from its configuration as it
 * last shipped (13f841f: src/pipeline/objects.ts, src/pipeline/columns.ts and
 * the sql/*.sql templates of that commit, unchanged in what they render for
 * 0002 up to b0fbd9c), copied so that changing the live builders never changes
 * what 0002 does. Never edit this file; a schema change is a new migration.
 *
 * Not frozen as first shipped (ad4a3ad): that version created the Kafka queue,
 * then the dead-letter view, then the staging view, each reading the queue.
 * Once the first view is attached the engine consumes and commits offsets, so
 * valid messages consumed before the staging view existed never reached
 * staging: every new install would lose them. The last version creates the
 * sinks and the parsed Null table with its two views first, then the queue,
 * and the parsing view (which starts consumption) last.
 *
 * Later migrations may import from this file because it never changes (0009
 * renders the same column list, validating SELECT and queue settings).
 */
import type { ColumnConfig, PipelineConfig } from '../../config/schema.ts';
import { RESERVED_COLUMN_NAMES } from '../../config/rules.ts';
import { ident, qualified, quoteString } from '../../clickhouse/sql.ts';
import { WinnowError } from '../../errors.ts';
import type { MigrationStatement } from './types.ts';

export interface Names0002 {
  database: string;
  final: string;
  queue: string;
  parsed: string;
  parsedMv: string;
  staging: string;
  stagingMv: string;
  errors: string;
  errorsMv: string;
  seen: string;
  kept: string;
  keptToFinalMv: string;
  keptToSeenMv: string;
}

export function names0002(p: PipelineConfig): Names0002 {
  const base = `winnow_${p.name}`;
  return {
    database: p.sink.database,
    final: p.sink.table,
    queue: `${base}_queue`,
    parsed: `${base}_parsed`,
    parsedMv: `${base}_parsed_mv`,
    staging: `${base}_staging`,
    stagingMv: `${base}_staging_mv`,
    errors: `${base}_errors`,
    errorsMv: `${base}_errors_mv`,
    seen: `${base}_seen`,
    kept: `${base}_kept`,
    keptToFinalMv: `${base}_kept_to_final_mv`,
    keptToSeenMv: `${base}_kept_to_seen_mv`,
  };
}

const DAY_S = 86_400;

/** `    \`name\` Type` lines of the configured columns (or of those named in `only`, in configured order). */
export function columnList(p: PipelineConfig, only?: string[]): string {
  const cols = only ? p.columns.filter((c) => only.includes(c.name)) : p.columns;
  return cols.map((c) => `    ${ident(c.name)} ${c.type}`).join(',\n');
}

export function names(list: string[]): string {
  return list.map(ident).join(', ');
}

/** Retention of staging and dead letters: the window plus a day, at least 2 days. */
function retentionSeconds(p: PipelineConfig): number {
  return Math.max(2 * DAY_S, Math.ceil(p.dedup.windowMs / 1000) + DAY_S);
}

/** Seen keys go twice the window after the later of their time and their write time. */
function seenExpirySql(p: PipelineConfig): string {
  return `greatest(toDateTime(\`__t\`), \`__at\`) + INTERVAL ${2 * Math.ceil(p.dedup.windowMs / 1000)} SECOND`;
}

function seenPartitionBy(p: PipelineConfig): string {
  const bucket = Math.min(DAY_S, Math.max(3600, Math.ceil(p.dedup.windowMs / 1000)));
  return `toStartOfInterval(\`__t\`, INTERVAL ${bucket} SECOND)`;
}

/** A guard, not DDL: it checks against today's reserved names (the configuration refuses them first anyway). */
function checkReserved(p: PipelineConfig): void {
  for (const c of p.columns) {
    if (RESERVED_COLUMN_NAMES.includes(c.name) || c.name.startsWith('__v_')) {
      throw new WinnowError('CONFIG_INVALID', `pipeline ${p.name}: column name "${c.name}" is reserved by winnow`, {
        hint: `rename it; reserved: ${RESERVED_COLUMN_NAMES.join(', ')}, __v_*`,
      });
    }
  }
}

// ---- columns.ts of 13f841f: how each column gets its value from the message ----

type Category = 'text' | 'time' | 'number' | 'bool' | 'complex';

function unwrap(type: string, wrapper: string): string | undefined {
  const prefix = wrapper + '(';
  return type.startsWith(prefix) && type.endsWith(')') ? type.slice(prefix.length, -1).trim() : undefined;
}

function typeInfo(type: string): { base: string; nullable: boolean; category: Category } {
  let t = type.trim();
  let nullable = false;
  for (;;) {
    const lc = unwrap(t, 'LowCardinality');
    if (lc !== undefined) {
      t = lc;
      continue;
    }
    const n = unwrap(t, 'Nullable');
    if (n !== undefined) {
      t = n;
      nullable = true;
      continue;
    }
    break;
  }
  const name = t.replace(/\(.*$/s, '');
  let category: Category;
  if (/^(String|FixedString|UUID|Enum8|Enum16|Enum|IPv4|IPv6)$/.test(name)) category = 'text';
  else if (/^(Date|Date32|DateTime|DateTime64)$/.test(name)) category = 'time';
  else if (/^(U?Int(8|16|32|64|128|256)|Float(32|64)|BFloat16|Decimal(32|64|128|256)?)$/.test(name))
    category = 'number';
  else if (name === 'Bool' || name === 'Boolean') category = 'bool';
  else category = 'complex';
  return { base: t, nullable, category };
}

interface ColumnSql {
  name: string;
  value: string;
  fault: string;
  reason: string;
  stored: string;
}

function columnSql(col: ColumnConfig): ColumnSql {
  const info = typeInfo(col.type);
  const base = quoteString(info.base);
  const v = `__v_${col.name}`;
  let value: string;
  let present: string;
  if (col.source.kind === 'expr') {
    value = `accurateCastOrNull((${col.source.expr}), ${base})`;
    present = `isNotNull(${ident(v)})`;
  } else {
    const p = col.source.path.map(quoteString).join(', ');
    const jt = `JSONType(_raw, ${p})`;
    present = `${jt} != 'Null'`;
    const fromNumber = `accurateCastOrNull(JSONExtractRaw(_raw, ${p}), ${base})`;
    switch (info.category) {
      case 'text':
        value = `multiIf(${jt} = 'String', accurateCastOrNull(JSONExtractString(_raw, ${p}), ${base}), NULL)`;
        break;
      case 'time':
        value =
          `multiIf(${jt} = 'String', accurateCastOrNull(parseDateTime64BestEffortOrNull(JSONExtractString(_raw, ${p}), 6, 'UTC'), ${base}), ` +
          `${jt} IN ('Int64', 'UInt64', 'Double'), ${fromNumber}, NULL)`;
        break;
      case 'number':
        value = `multiIf(${jt} IN ('Int64', 'UInt64', 'Double'), ${fromNumber}, NULL)`;
        break;
      case 'bool':
        value = `multiIf(${jt} = 'Bool', accurateCastOrNull(JSONExtractBool(_raw, ${p}), ${base}), NULL)`;
        break;
      case 'complex':
        // Nullable() cannot wrap arrays and maps: the value is the extraction itself.
        value = `JSONExtract(_raw, ${p}, ${quoteString(col.type)})`;
        present = `JSONHas(_raw, ${p})`;
        break;
    }
  }
  const where = col.source.kind === 'expr' ? `expression ${col.source.expr}` : `$.${col.source.path.join('.')}`;
  let fault: string;
  let reason: string;
  if (info.category === 'complex') {
    fault = col.optional ? 'false' : `NOT (${present})`;
    reason = `${col.name}: missing at ${where}`;
  } else if (info.nullable || col.optional) {
    // absent is fine; present but unusable is the message's fault
    fault = `(${present}) AND isNull(${ident(v)})`;
    reason = `${col.name}: not a ${col.type} at ${where}`;
  } else {
    fault = `isNull(${ident(v)})`;
    reason = `${col.name}: missing, null or not a ${col.type} at ${where}`;
  }
  let stored: string;
  if (info.category === 'complex') stored = ident(v);
  else if (info.nullable) stored = `CAST(${ident(v)}, ${quoteString(col.type)})`;
  else stored = `CAST(ifNull(${ident(v)}, defaultValueOfTypeName(${base})), ${quoteString(col.type)})`;
  return { name: col.name, value, fault, reason, stored };
}

function timeSql(p: PipelineConfig): string {
  switch (p.dedup.time.kind) {
    case 'kafka':
      return 'ifNull(_timestamp_ms, now64(3))';
    case 'ingestion':
      return 'now64(3)';
    case 'column':
      return `toDateTime64(ifNull(${ident('__v_' + p.dedup.time.column)}, toDateTime64(0, 3)), 3, 'UTC')`;
  }
}

// ---- objects.ts and sql/*.sql of 13f841f ----

/** The SELECT over the Kafka queue that parses and checks each message (the parsing view's). */
export function validatedSelect(p: PipelineConfig, queue: string): string {
  const cols = p.columns.map(columnSql);
  const values = cols.map((c) => `        ${c.value} AS ${ident('__v_' + c.name)}`).join(',\n');
  const stored = cols.map((c) => `    ${c.stored} AS ${ident(c.name)}`).join(',\n');
  const faults = cols.map((c) => `${c.fault}, ${quoteString(c.reason)}`).join(',\n            ');
  return `SELECT
${stored},
    ${timeSql(p)} AS \`__t\`,
    \`_raw\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`,
    \`__error\`
FROM
(
    SELECT
        \`_raw\`,
        _topic AS \`_topic\`,
        toUInt32(_partition) AS \`_partition\`,
        _offset AS \`_offset\`,
        _timestamp_ms AS \`_timestamp_ms\`,
        now64(3) AS \`_ingested_at\`,
${values},
        multiIf(
            length(_error) > 0, concat('unreadable message: ', _error),
            length(\`_raw\`) = 0, 'empty message',
            NOT isValidUTF8(\`_raw\`), 'invalid UTF-8',
            NOT isValidJSON(\`_raw\`), 'malformed JSON',
            JSONType(\`_raw\`) != 'Object', 'not a JSON object',
            ${faults},
            ''
        ) AS \`__error\`
    FROM ${queue}
)`;
}

/** `,\n    kafka_security_protocol = ...` settings of the queue; the password as `'***'` when redacted. */
export function kafkaAuthSettings(p: PipelineConfig, password: string | undefined, redact: boolean): string {
  const a = p.source.auth;
  const parts: string[] = [];
  if (a.protocol !== 'PLAINTEXT') parts.push(`kafka_security_protocol = ${quoteString(a.protocol.toLowerCase())}`);
  if (a.mechanism) parts.push(`kafka_sasl_mechanism = ${quoteString(a.mechanism)}`);
  if (a.username !== undefined) parts.push(`kafka_sasl_username = ${quoteString(a.username)}`);
  if (password !== undefined) parts.push(`kafka_sasl_password = ${redact ? "'***'" : quoteString(password)}`);
  return parts.map((s) => `,\n    ${s}`).join('');
}

/**
 * The statements of 0002's up, in creation order: sinks first; then the parsed
 * Null table and the two views that split it into staging and dead letters;
 * the Kafka queue and the view that reads it (consumption starts) last.
 */
export function upStatements0002(
  p: PipelineConfig,
  opts: { kafkaPassword?: string; createFinal: boolean },
): MigrationStatement[] {
  checkReserved(p);
  const n = names0002(p);
  const q = (t: string): string => qualified(n.database, t);
  const keyCols = p.dedup.key;
  const allColumns = columnList(p);
  const columnNames = names(p.columns.map((c) => c.name));
  const out: MigrationStatement[] = [];
  const add = (title: string, sql: string, display = sql): void => {
    out.push({ title, sql, display });
  };
  if (opts.createFinal) {
    const partitionBy = p.sink.partitionBy ? `PARTITION BY ${p.sink.partitionBy}\n` : '';
    add(
      `final table ${n.final}`,
      `CREATE TABLE IF NOT EXISTS ${q(n.final)}
(
${allColumns}
)
ENGINE = ${p.sink.engine}
${partitionBy}ORDER BY (${names(p.sink.orderBy)})
SETTINGS non_replicated_deduplication_window = 10000`,
    );
  }
  add(
    `staging table ${n.staging}`,
    `CREATE TABLE IF NOT EXISTS ${q(n.staging)}
(
${allColumns},
    \`__t\` DateTime64(3, 'UTC'),
    \`_topic\` LowCardinality(String),
    \`_partition\` UInt32,
    \`_offset\` UInt64,
    \`_timestamp_ms\` Nullable(DateTime64(3, 'UTC')),
    \`_ingested_at\` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (\`_topic\`, \`_partition\`, \`_offset\`)
TTL toDateTime(\`_ingested_at\`) + INTERVAL ${retentionSeconds(p)} SECOND`,
  );
  add(
    `dead letters ${n.errors}`,
    `CREATE TABLE IF NOT EXISTS ${q(n.errors)}
(
    \`_raw\` String,
    \`__error\` String,
    \`_topic\` LowCardinality(String),
    \`_partition\` UInt32,
    \`_offset\` UInt64,
    \`_timestamp_ms\` Nullable(DateTime64(3, 'UTC')),
    \`_ingested_at\` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (\`_topic\`, \`_partition\`, \`_offset\`)
TTL toDateTime(\`_ingested_at\`) + INTERVAL ${retentionSeconds(p)} SECOND`,
  );
  add(
    `seen keys ${n.seen}`,
    `CREATE TABLE IF NOT EXISTS ${q(n.seen)}
(
${columnList(p, keyCols)},
    \`__t\` DateTime64(3, 'UTC'),
    \`__slice\` String,
    \`__h\` UInt64 MATERIALIZED sipHash64(${names(keyCols)}),
    \`__at\` DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY ${seenPartitionBy(p)}
ORDER BY (${names(keyCols)})
TTL ${seenExpirySql(p)}
SETTINGS non_replicated_deduplication_window = 10000`,
  );
  add(
    `dedup entry point ${n.kept}`,
    `CREATE TABLE IF NOT EXISTS ${q(n.kept)}
(
${allColumns},
    \`__t\` DateTime64(3, 'UTC'),
    \`__slice\` String
)
ENGINE = Null`,
  );
  add(
    `view ${n.keptToFinalMv}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.keptToFinalMv)} TO ${q(n.final)}\nAS SELECT ${columnNames} FROM ${q(n.kept)}`,
  );
  add(
    `view ${n.keptToSeenMv}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.keptToSeenMv)} TO ${q(n.seen)}\nAS SELECT ${names(keyCols)}, \`__t\`, \`__slice\` FROM ${q(n.kept)}`,
  );
  // Messages are parsed and checked once, into a Null table; its two views split them into
  // staging and dead letters. The queue and the view that reads it come last: they start consumption.
  add(
    `parsed messages ${n.parsed}`,
    `CREATE TABLE IF NOT EXISTS ${q(n.parsed)}
(
${allColumns},
    \`__t\` DateTime64(3, 'UTC'),
    \`_raw\` String,
    \`_topic\` LowCardinality(String),
    \`_partition\` UInt32,
    \`_offset\` UInt64,
    \`_timestamp_ms\` Nullable(DateTime64(3, 'UTC')),
    \`_ingested_at\` DateTime64(3, 'UTC'),
    \`__error\` String
)
ENGINE = Null`,
  );
  add(
    `dead-letter view ${n.errorsMv}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.errorsMv)} TO ${q(n.errors)}
AS SELECT \`_raw\`, \`__error\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`
FROM ${q(n.parsed)}
WHERE \`__error\` != ''`,
  );
  add(
    `staging view ${n.stagingMv}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.stagingMv)} TO ${q(n.staging)}
AS SELECT ${columnNames}, \`__t\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`
FROM ${q(n.parsed)}
WHERE \`__error\` = ''`,
  );
  // The engine writes a block at least every 500 ms: bounds produce-to-staging latency (its default is 7.5 s).
  const queue = (redact: boolean): string => `CREATE TABLE IF NOT EXISTS ${q(n.queue)}
(
    \`_raw\` String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = ${quoteString(p.source.brokers.join(','))},
    kafka_topic_list = ${quoteString(p.source.topics.join(','))},
    kafka_group_name = ${quoteString(p.source.consumerGroup)},
    kafka_format = 'RawBLOB',
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = ${p.source.consumers},
    kafka_flush_interval_ms = 500${kafkaAuthSettings(p, opts.kafkaPassword, redact)}`;
  add(`Kafka queue ${n.queue}`, queue(false), queue(true));
  add(
    `parsing view ${n.parsedMv}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.parsedMv)} TO ${q(n.parsed)}\nAS ${validatedSelect(p, q(n.queue))}`,
  );
  return out;
}

/** The statements of 0002's down: consumption stops first; the final table is kept unless asked. */
export function downStatements0002(p: PipelineConfig, opts: { dropFinal: boolean }): MigrationStatement[] {
  const n = names0002(p);
  const q = (t: string): string => qualified(n.database, t);
  const out: MigrationStatement[] = [];
  const view = (v: string): void => {
    const sql = `DROP VIEW IF EXISTS ${q(v)} SYNC`;
    out.push({ title: `drop view ${v}`, sql, display: sql });
  };
  const table = (t: string): void => {
    const sql = `DROP TABLE IF EXISTS ${q(t)} SYNC`;
    out.push({ title: `drop table ${t}`, sql, display: sql });
  };
  view(n.parsedMv);
  table(n.queue);
  view(n.stagingMv);
  view(n.errorsMv);
  table(n.parsed);
  view(n.keptToSeenMv);
  view(n.keptToFinalMv);
  table(n.kept);
  table(n.seen);
  table(n.errors);
  table(n.staging);
  if (opts.dropFinal) table(n.final);
  return out;
}
