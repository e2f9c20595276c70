CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `seq` UInt64,
    `slice_id` String,
    `status` Enum8('planned' = 1, 'committed' = 2, 'split' = 3),
    `ranges` Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64)),
    `next_offsets` Array(Tuple(topic String, partition UInt32, offset UInt64)),
    `rows_in` UInt64,
    `inserted` UInt64,
    `duplicates` UInt64,
    `rejected` UInt64 DEFAULT 0,
    `planned_at` DateTime64(3, 'UTC'),
    `committed_at` Nullable(DateTime64(3, 'UTC')),
    `duration_ms` UInt32
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `seq`, `status`)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000
