/**
 * The typed pipeline definition, after validation and defaults. Other modules
 * are written against these shapes; change them only together with their users.
 */

/** A literal value, or the name of an environment variable that holds it. */
export type Secret = string | { env: string };

/** Where environment variables come from (process.env, or a test's own map). */
export type Env = Record<string, string | undefined>;

export interface WinnowConfig {
  /** HTTP API of `winnow run`. */
  server: { port: number };
  /** At least one; names unique. */
  pipelines: PipelineConfig[];
}

export type SecurityProtocol = 'PLAINTEXT' | 'SSL' | 'SASL_PLAINTEXT' | 'SASL_SSL';
export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface KafkaAuth {
  protocol: SecurityProtocol;
  /** Required for SASL_*, forbidden otherwise. */
  mechanism?: SaslMechanism;
  /** Required for SASL_*, forbidden otherwise. */
  username?: string;
  /** Required for SASL_*, forbidden otherwise. */
  password?: Secret;
}

export interface SourceConfig {
  /** host:port, as both ClickHouse's Kafka engine and winnow reach them. */
  brokers: string[];
  /** Several topics dedup across each other. */
  topics: string[];
  auth: KafkaAuth;
  /** Path to a PEM CA file; only with SSL / SASL_SSL. */
  tls?: { ca?: string };
  consumerGroup: string;
  initialOffset: 'earliest' | 'latest';
  /** Kafka engine consumers, 1..16. */
  consumers: number;
}

export type ColumnSource = { kind: 'path'; path: string[] } | { kind: 'expr'; expr: string };

export interface ColumnConfig {
  name: string;
  /** ClickHouse type; only its shape is validated here. */
  type: string;
  /** A JSON path into the message, or a ClickHouse expression over `_raw` and the Kafka virtual columns. */
  source: ColumnSource;
  /** false: a missing/null value sends the message to dead letters; true: the type's default is used. */
  optional: boolean;
}

export type DedupTime = { kind: 'kafka' } | { kind: 'ingestion' } | { kind: 'column'; column: string };

export interface DedupConfig {
  /** Column names, compared exactly. */
  key: string[];
  /** Duplicates are occurrences of a kept key closer than this, in ms. */
  windowMs: number;
  /** Which time `t` the window is measured on. */
  time: DedupTime;
  /**
   * How a slice finds the kept times of its keys: `scan` reads the seen keys'
   * hashes within the window (cost grows with window x rate); `rocksdb` looks
   * them up in an EmbeddedRocksDB index beside the seen keys (winnow_<p>_seen_kv).
   */
  index: DedupIndex;
}

export type DedupIndex = 'scan' | 'rocksdb';

export interface SinkConfig {
  url: string;
  user: string;
  password?: Secret;
  database: string;
  table: string;
  /** create: winnow creates the final table; adopt: it must exist and match the columns. */
  mode: 'create' | 'adopt';
  /** Used for create. */
  engine: string;
  /** Used for create; defaults to dedup.key. */
  orderBy: string[];
  /** Optional ClickHouse expression, used for create. */
  partitionBy?: string;
}

export interface ScheduleConfig {
  /** Controller tick, ms. */
  intervalMs: number;
  /** Upper bound of the rows one slice covers. */
  maxSliceRows: number;
  /** Consistency checker period, ms. */
  checkIntervalMs: number;
}

export interface ApiConfig {
  /** Bearer token for POST replay. */
  replayToken?: Secret;
}

export interface PipelineConfig {
  /** Used in object names winnow_<name>_*. */
  name: string;
  source: SourceConfig;
  columns: ColumnConfig[];
  dedup: DedupConfig;
  sink: SinkConfig;
  schedule: ScheduleConfig;
  api: ApiConfig;
}
