CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `checked_at` DateTime64(3, 'UTC'),
    `ok` UInt8,
    `report` String
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `checked_at`)
TTL toDateTime(`checked_at`) + INTERVAL 30 DAY
