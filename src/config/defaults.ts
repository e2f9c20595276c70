/**
 * Every default of the pipeline definition, with its unit. A key absent from
 * the YAML file takes the value here; `dedup.window`, `source.brokers`,
 * `source.topics`, `columns` and `sink.table` have none and are required.
 */
export const DEFAULTS = {
  server: {
    port: 8080, // TCP port of the HTTP API of `winnow run`; 0 picks a free port
  },
  source: {
    auth: { protocol: 'PLAINTEXT' }, // no TLS, no SASL
    consumerGroupPrefix: 'winnow_', // consumer group = prefix + pipeline name
    initialOffset: 'earliest', // where a new consumer group starts reading
    consumers: 1, // Kafka engine consumers (kafka_num_consumers), count
  },
  column: {
    optional: false, // a missing/null value sends the message to dead letters
  },
  dedup: {
    key: ['event_id'], // column names
    time: { kind: 'kafka' }, // the Kafka record timestamp
    index: 'scan', // how a slice finds its keys' kept times: scan the seen keys' hashes (or 'rocksdb')
  },
  sink: {
    url: 'http://localhost:8123', // ClickHouse HTTP interface
    user: 'default',
    database: 'default',
    mode: 'create', // winnow creates the final table
    engine: 'MergeTree', // engine of a created final table; ORDER BY defaults to dedup.key
  },
  schedule: {
    intervalMs: 1_000, // controller tick, ms (YAML `interval: 1s`)
    maxSliceRows: 1_000_000, // rows per slice, count
    checkIntervalMs: 60_000, // consistency checker period, ms (YAML `checkInterval: 1m`)
  },
} as const;

/** Bounds the schema enforces. */
export const LIMITS = {
  maxWindowMs: 30 * 86_400_000, // dedup.window, ms (30d); the window is also the TTL of the seen keys
  minIntervalMs: 100, // schedule.interval, ms: faster ticks only add per-query overhead
  minCheckIntervalMs: 100, // schedule.checkInterval, ms
  maxConsumers: 16, // source.consumers, count
  maxPipelineNameLength: 40, // characters; object names are winnow_<name>_*
} as const;
