CREATE TABLE IF NOT EXISTS {{table}}
(
{{columns}},
    `__t` DateTime64(3, 'UTC'),
    `_raw` String,
    `_topic` LowCardinality(String),
    `_partition` UInt32,
    `_offset` UInt64,
    `_timestamp_ms` Nullable(DateTime64(3, 'UTC')),
    `_ingested_at` DateTime64(3, 'UTC'),
    `__error` String
)
ENGINE = Null
