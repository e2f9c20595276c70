CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `epoch` UInt64,
    `owner` String,
    `claimed_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `epoch`)
TTL toDateTime(`claimed_at`) + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 10000
