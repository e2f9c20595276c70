CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `epoch` UInt64,
    `owner` String,
    `claimed_at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `gen` UInt32 DEFAULT 0,
    `kind` Enum8('claim' = 1, 'release' = 2) DEFAULT 'claim',
    `protocol` UInt8 DEFAULT 1,
    `note` String DEFAULT ''
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `epoch`)
TTL toDateTime(`claimed_at`) + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 10000
