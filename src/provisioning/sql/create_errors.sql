CREATE TABLE IF NOT EXISTS {{table}}
(
    `_raw` String,
    `__error` String,
    `_topic` LowCardinality(String),
    `_partition` UInt32,
    `_offset` UInt64,
    `_timestamp_ms` Nullable(DateTime64(3, 'UTC')),
    `_ingested_at` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (`_topic`, `_partition`, `_offset`)
TTL toDateTime(`_ingested_at`) + INTERVAL {{retentionSeconds}} SECOND
