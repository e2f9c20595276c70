/**
 * Name and shape rules shared by the schema and the cross-field checks. They
 * keep what winnow interpolates into SQL and object names well-formed.
 */

/** ClickHouse identifiers winnow interpolates into SQL (columns, database, table). */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Pipeline names end up in object names winnow_<name>_*. */
export const PIPELINE_NAME = /^[a-z][a-z0-9_]{0,39}$/;
/** Kafka's own rule for topic names; used for consumer group names too. */
export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;
/** Types a dedup time column may have (not Nullable: a message without a time cannot be windowed). */
export const TIME_COLUMN_TYPE = /^(Date|Date32|DateTime|DateTime64)(\(.*\))?$/;
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** host:port or [ipv6]:port. */
export const BROKER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*):[1-9][0-9]{0,4}$/;

export const PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

/**
 * Column names taken by the Kafka engine's virtual columns and by winnow's own
 * staging columns; a mapped column of the same name would shadow them.
 */
export const RESERVED_COLUMN_NAMES: readonly string[] = [
  '_topic',
  '_key',
  '_offset',
  '_partition',
  '_timestamp',
  '_timestamp_ms',
  '_headers',
  '_raw',
  '_raw_message',
  '_error',
  '_ingested_at',
  '__t',
  '__slice',
  '__error',
  '__h',
  '__at',
  '__repair',
  '__found',
  '__copies',
  '__saved_at',
];

/** Prefix of the per-column values winnow's parsing view computes (`__v_<column>`). */
export const RESERVED_COLUMN_PREFIX = '__v_';

/** The one rule for mapped column names: config validation and the DDL both ask it. */
export function isReservedColumnName(name: string): boolean {
  return RESERVED_COLUMN_NAMES.includes(name) || name.startsWith(RESERVED_COLUMN_PREFIX);
}

/** Keys whose values never appear in error messages or logs. */
export const SECRET_KEYS: readonly string[] = ['password', 'replayToken'];
