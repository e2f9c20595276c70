CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `replay_id` String,
    `chunk` UInt32,
    `ranges` Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64)),
    `rows_in` UInt64,
    `inserted` UInt64,
    `duplicates` UInt64,
    `reason` String,
    `at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `at`)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000
