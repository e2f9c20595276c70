/**
 * Why one file over 300 lines: the DDL of every object at the latest version, in one place on purpose (CONTRIBUTING.md).
 *
 * Every ClickHouse object of one pipeline, named and rendered from its
 * configuration: pure functions from config to SQL text, in creation order,
 * over the templates of sql/. The DDL lives here; migrations run it (the
 * ALTERs of an upgrade are written out in their migration), and runtime
 * statements live with the module that owns their table.
 */
import type { PipelineConfig } from '../config/schema.ts';
import { ident, qualified, quoteString } from '../clickhouse/sql.ts';
import { renderDdl } from './ddl.ts';
import { WinnowError } from '../errors.ts';
import { isReservedColumnName, RESERVED_COLUMN_NAMES } from '../config/rules.ts';
import { columnSql, emptyKeySql, timeSql } from './columns.ts';

export const SLICES_TABLE = 'winnow_slices';
export const MIGRATIONS_TABLE = 'winnow_migrations';
export const REPLAYS_TABLE = 'winnow_replays';
export const CHECKS_TABLE = 'winnow_checks';
export const REPAIRS_TABLE = 'winnow_repairs';
export const LEASES_TABLE = 'winnow_leases';
export const REPLAY_JOBS_TABLE = 'winnow_replay_jobs';

export interface ObjectNames {
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
  /** the seen-key index of `dedup.index: rocksdb` (0013): key hash -> latest kept time and slice */
  seenKv: string;
  kept: string;
  keptToFinalMv: string;
  keptToSeenMv: string;
  /** dedup.index rocksdb (0014, 0015): the kept rows marked `__kv_write` into seenKv, inside the slice insert */
  keptToSeenKvMv: string;
  /** the checker's write-ahead copies of doubled final rows and seen keys (0006) */
  repairFinal: string;
  repairSeen: string;
  slices: string;
}

export function objectNames(p: PipelineConfig): ObjectNames {
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
    seenKv: `${base}_seen_kv`,
    kept: `${base}_kept`,
    keptToFinalMv: `${base}_kept_to_final_mv`,
    keptToSeenMv: `${base}_kept_to_seen_mv`,
    keptToSeenKvMv: `${base}_kept_to_seen_kv_mv`,
    repairFinal: `${base}_repair_final`,
    repairSeen: `${base}_repair_seen`,
    slices: SLICES_TABLE,
  };
}

export interface Statement {
  /** what it does, for --dry-run and progress output */
  title: string;
  sql: string;
  /** SQL text safe to print (secrets replaced) */
  display: string;
}

const DAY_S = 86_400;

function columnList(p: PipelineConfig, only?: string[]): string {
  const cols = only ? p.columns.filter((c) => only.includes(c.name)) : p.columns;
  return cols.map((c) => `    ${ident(c.name)} ${c.type}`).join(',\n');
}

function names(list: string[]): string {
  return list.map(ident).join(', ');
}

/** Retention of staging and dead letters: the window plus a day, at least 2 days (replays need them). */
export function retentionSeconds(p: PipelineConfig): number {
  return Math.max(2 * DAY_S, Math.ceil(p.dedup.windowMs / 1000) + DAY_S);
}

/** Seen keys live for twice the window: lookups filter on time themselves; TTL only frees space. */
export function seenTtlSeconds(p: PipelineConfig): number {
  return 2 * Math.ceil(p.dedup.windowMs / 1000);
}

/**
 * The seen-key index's key: a 128-bit hash of the dedup key (the seen keys'
 * `__h` is its 64-bit sibling; 64 bits collide somewhere among a billion keys
 * with a few percent probability, and a collision would drop an event).
 */
export function seenKvHashSql(p: PipelineConfig): string {
  return `reinterpretAsUInt128(sipHash128(${names(p.dedup.key)}))`;
}

/**
 * dedup.index rocksdb (0015): the kept table's column that marks the rows the
 * index's view writes (the key's latest kept row of the insert, its entry not
 * later). Its DEFAULT throws: a slice insert that does not name it (one older
 * than 0015) fails before any row reaches a view, instead of leaving its keys
 * without entries.
 */
export function keptKvWriteColumn(p: PipelineConfig): string {
  const refusal = `winnow_${p.name}_kept: this slice insert names no __kv_write: it is older than migration 0015; upgrade winnow`;
  return `\`__kv_write\` UInt8 DEFAULT throwIf(length(\`__slice\`) >= 0, ${quoteString(refusal)})`;
}

/** The seen-key index's slice column: a slice id as the index stores it. */
export function seenKvSliceSql(sliceIdSql: string): string {
  return `sipHash64(${sliceIdSql})`;
}

/**
 * When a seen key may go: twice the window after its time or after it was
 * written, whichever is later. Measured from the time alone, a backlog older
 * than that (a daemon down for a while, late event times) would lose its keys
 * on insert, and its later duplicates would pass.
 */
export function seenExpirySql(p: PipelineConfig): string {
  return `greatest(toDateTime(\`__t\`), \`__at\`) + INTERVAL ${seenTtlSeconds(p)} SECOND`;
}

function seenPartitionBy(p: PipelineConfig): string {
  // Buckets about a window wide, so expired state goes by whole partitions.
  const bucket = Math.min(DAY_S, Math.max(3600, Math.ceil(p.dedup.windowMs / 1000)));
  return `toStartOfInterval(\`__t\`, INTERVAL ${bucket} SECOND)`;
}

function checkReserved(p: PipelineConfig): void {
  for (const c of p.columns) {
    if (isReservedColumnName(c.name)) {
      throw new WinnowError('CONFIG_INVALID', `pipeline ${p.name}: column name "${c.name}" is reserved by winnow`, {
        hint: `rename it; reserved: ${RESERVED_COLUMN_NAMES.join(', ')}, __v_*`,
      });
    }
  }
}

/** The SELECT over the queue that parses and checks each message; both views use it. */
export function validatedSelect(p: PipelineConfig, queue: string, kafkaError = '_error'): string {
  const cols = p.columns.map(columnSql);
  const values = cols.map((c) => `        ${c.value} AS ${ident('__v_' + c.name)}`).join(',\n');
  const stored = cols.map((c) => `    ${c.stored} AS ${ident(c.name)}`).join(',\n');
  const keyColumns = p.dedup.key.flatMap((k) => p.columns.filter((c) => c.name === k));
  // After every column's own fault: an empty key is refused like a null one (0011).
  const emptyKeys = keyColumns.flatMap((c) => {
    const e = emptyKeySql(c);
    return e ? [`${e.fault}, ${quoteString(e.reason)}`] : [];
  });
  const faults = [...cols.map((c) => `${c.fault}, ${quoteString(c.reason)}`), ...emptyKeys].join(',\n            ');
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
            length(${kafkaError}) > 0, concat('unreadable message: ', ${kafkaError}),
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

function kafkaAuthSettings(p: PipelineConfig, password: string | undefined, redact: boolean): string {
  const a = p.source.auth;
  const parts: string[] = [];
  if (a.protocol !== 'PLAINTEXT') parts.push(`kafka_security_protocol = ${quoteString(a.protocol.toLowerCase())}`);
  if (a.mechanism) parts.push(`kafka_sasl_mechanism = ${quoteString(a.mechanism)}`);
  if (a.username !== undefined) parts.push(`kafka_sasl_username = ${quoteString(a.username)}`);
  if (password !== undefined) parts.push(`kafka_sasl_password = ${redact ? "'***'" : quoteString(password)}`);
  return parts.map((s) => `,\n    ${s}`).join('');
}

export interface RenderOptions {
  /** the resolved Kafka SASL password, if any */
  kafkaPassword?: string;
  /** include CREATE of the final table (mode create) */
  createFinal: boolean;
}

/** The statements of `migrate up` for one pipeline, in creation order: sinks first, the Kafka queue and its views last. */
export function upStatements(p: PipelineConfig, opts: RenderOptions): Statement[] {
  checkReserved(p);
  const n = objectNames(p);
  const q = (t: string): string => qualified(n.database, t);
  const keyCols = p.dedup.key;
  const out: Statement[] = [];
  const add = (title: string, sql: string, display = sql): void => {
    out.push({ title, sql, display });
  };
  if (opts.createFinal) {
    add(
      `final table ${n.final}`,
      renderDdl('create_final', {
        table: q(n.final),
        columns: columnList(p),
        engine: p.sink.engine,
        partitionBy: p.sink.partitionBy ? `PARTITION BY ${p.sink.partitionBy}\n` : '',
        orderBy: names(p.sink.orderBy),
      }),
    );
  }
  add(
    `staging table ${n.staging}`,
    renderDdl('create_staging', {
      table: q(n.staging),
      columns: columnList(p),
      retentionSeconds: String(retentionSeconds(p)),
    }),
  );
  add(
    `dead letters ${n.errors}`,
    renderDdl('create_errors', { table: q(n.errors), retentionSeconds: String(retentionSeconds(p)) }),
  );
  add(
    `seen keys ${n.seen}`,
    renderDdl('create_seen', {
      table: q(n.seen),
      keyColumns: columnList(p, keyCols),
      key: names(keyCols),
      partitionBy: seenPartitionBy(p),
      ttl: seenExpirySql(p),
    }),
  );
  if (p.dedup.index === 'rocksdb') {
    add(
      `seen-key index ${n.seenKv}`,
      renderDdl('create_seen_kv', { table: q(n.seenKv), ttlSeconds: String(seenTtlSeconds(p)) }),
    );
  }
  add(
    `dedup entry point ${n.kept}`,
    renderDdl('create_kept', {
      table: q(n.kept),
      columns: columnList(p),
      kvWrite: p.dedup.index === 'rocksdb' ? `,\n    ${keptKvWriteColumn(p)}` : '',
    }),
  );
  add(
    `view ${n.keptToFinalMv}`,
    renderDdl('create_kept_to_final_mv', {
      view: q(n.keptToFinalMv),
      final: q(n.final),
      kept: q(n.kept),
      columns: names(p.columns.map((c) => c.name)),
    }),
  );
  add(
    `view ${n.keptToSeenMv}`,
    renderDdl('create_kept_to_seen_mv', {
      view: q(n.keptToSeenMv),
      seen: q(n.seen),
      kept: q(n.kept),
      key: names(keyCols),
    }),
  );
  if (p.dedup.index === 'rocksdb') {
    add(
      `seen-key index view ${n.keptToSeenKvMv}`,
      renderDdl('create_kept_to_seen_kv_mv', {
        view: q(n.keptToSeenKvMv),
        seenKv: q(n.seenKv),
        kept: q(n.kept),
        kvHash: seenKvHashSql(p),
      }),
    );
  }
  const queueVars = (redact: boolean): Record<string, string> => ({
    table: q(n.queue),
    brokers: quoteString(p.source.brokers.join(',')),
    topics: quoteString(p.source.topics.join(',')),
    group: quoteString(p.source.consumerGroup),
    consumers: String(p.source.consumers),
    // The engine writes a block at least this often: bounds produce-to-staging latency (its default is 7.5 s).
    flushMs: '500',
    auth: kafkaAuthSettings(p, opts.kafkaPassword, redact),
  });
  // Messages are parsed and checked once, into a Null table; its two views split them into
  // staging and dead letters. The queue and the view that reads it come last: they start consumption.
  add(`parsed messages ${n.parsed}`, renderDdl('create_parsed', { table: q(n.parsed), columns: columnList(p) }));
  add(
    `dead-letter view ${n.errorsMv}`,
    renderDdl('create_errors_mv', { view: q(n.errorsMv), errors: q(n.errors), parsed: q(n.parsed) }),
  );
  add(
    `staging view ${n.stagingMv}`,
    renderDdl('create_staging_mv', {
      view: q(n.stagingMv),
      staging: q(n.staging),
      parsed: q(n.parsed),
      columns: names(p.columns.map((c) => c.name)),
    }),
  );
  add(
    `Kafka queue ${n.queue}`,
    renderDdl('create_queue', queueVars(false)),
    renderDdl('create_queue', queueVars(true)),
  );
  add(
    `parsing view ${n.parsedMv}`,
    renderDdl('create_parsed_mv', {
      view: q(n.parsedMv),
      parsed: q(n.parsed),
      validated: validatedSelect(p, q(n.queue)),
    }),
  );
  return out;
}

/** `migrate down`: consumption stops first; the final table is kept unless asked. */
export function downStatements(p: PipelineConfig, opts: { dropFinal: boolean }): Statement[] {
  const n = objectNames(p);
  const q = (t: string): string => qualified(n.database, t);
  const out: Statement[] = [];
  const view = (v: string): void => {
    const sql = renderDdl('drop_view', { view: q(v) });
    out.push({ title: `drop view ${v}`, sql, display: sql });
  };
  const table = (t: string): void => {
    const sql = renderDdl('drop_table', { table: q(t) });
    out.push({ title: `drop table ${t}`, sql, display: sql });
  };
  view(n.parsedMv);
  table(n.queue);
  view(n.stagingMv);
  view(n.errorsMv);
  table(n.parsed);
  if (p.dedup.index === 'rocksdb') view(n.keptToSeenKvMv);
  view(n.keptToSeenMv);
  view(n.keptToFinalMv);
  table(n.kept);
  table(n.seen);
  if (p.dedup.index === 'rocksdb') table(n.seenKv);
  table(n.errors);
  table(n.staging);
  if (opts.dropFinal) table(n.final);
  return out;
}

/**
 * What the checker needs to repair a doubled slice (0006): the repairs log,
 * shared by the pipelines of a database, and per pipeline the write-ahead
 * copies of the doubled final rows and seen keys, saved before anything is
 * deleted.
 */
export function repairStatements(p: PipelineConfig): Statement[] {
  const n = objectNames(p);
  const q = (t: string): string => qualified(n.database, t);
  const key = names(p.dedup.key);
  const out: [string, string][] = [
    [`repairs log ${REPAIRS_TABLE}`, renderDdl('create_repairs', { table: q(REPAIRS_TABLE) })],
    [
      `saved final rows ${n.repairFinal}`,
      renderDdl('create_repair_final', { table: q(n.repairFinal), columns: columnList(p), key }),
    ],
    [
      `saved seen keys ${n.repairSeen}`,
      renderDdl('create_repair_seen', { table: q(n.repairSeen), keyColumns: columnList(p, p.dedup.key), key }),
    ],
  ];
  return out.map(([title, sql]) => ({ title, sql, display: sql }));
}

export function slicesTableSql(database: string): string {
  return renderDdl('create_slices', { table: qualified(database, SLICES_TABLE) });
}

/**
 * The tables every pipeline of a database shares, as their migrations create
 * them (0001, 0003, 0004, 0012; the repairs log is in repairStatements). The slices
 * table then gets its deduplication window (0006), `rejected` and 'split' (0007);
 * the replays table its deduplication window (0012).
 */
export function sharedTableStatements(database: string): Statement[] {
  const out: [string, string][] = [
    [`slices table ${SLICES_TABLE}`, slicesTableSql(database)],
    [`leases table ${LEASES_TABLE}`, renderDdl('create_leases', { table: qualified(database, LEASES_TABLE) })],
    [`replays table ${REPLAYS_TABLE}`, renderDdl('create_replays', { table: qualified(database, REPLAYS_TABLE) })],
    [`checks table ${CHECKS_TABLE}`, renderDdl('create_checks', { table: qualified(database, CHECKS_TABLE) })],
    [
      `replay jobs table ${REPLAY_JOBS_TABLE}`,
      renderDdl('create_replay_jobs', { table: qualified(database, REPLAY_JOBS_TABLE) }),
    ],
  ];
  return out.map(([title, sql]) => ({ title, sql, display: sql }));
}

/**
 * Every object of a pipeline at the latest version, in creation order: the
 * shared tables, the pipeline's objects, the repair tables. Migrations build
 * the same through their own frozen DDL; test/e2e/migrations.test.ts proves
 * the two agree object by object.
 */
export function latestStatements(p: PipelineConfig, opts: RenderOptions): Statement[] {
  return [
    ...sharedTableStatements(p.sink.database),
    leaseProtocolStatement(p),
    ...upStatements(p, opts),
    ...repairStatements(p),
  ];
}

/**
 * The pipeline's own constraint on the shared leases table: claims of daemons
 * older than lease protocol 2 (no terms, no releases) are refused for it.
 */
export function leaseProtocolStatement(p: PipelineConfig): Statement {
  const sql =
    `ALTER TABLE ${qualified(p.sink.database, LEASES_TABLE)} ADD CONSTRAINT IF NOT EXISTS ` +
    `${ident(`lease_protocol_${p.name}`)} CHECK protocol >= 2 OR pipeline != ${quoteString(p.name)}`;
  return { title: `leases of ${p.name}: refuse claims of daemons older than lease protocol 2`, sql, display: sql };
}
