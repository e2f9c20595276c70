CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `repair_id` String,
    `step` Enum8('saved' = 1, 'deleting' = 2, 'done' = 3),
    `attempt` UInt32,
    `at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `keys` UInt64,
    `final_removed` UInt64,
    `seen_removed` UInt64,
    `restored` UInt64,
    `final_coords` Array(Tuple(String, UInt64)),
    `seen_coords` Array(Tuple(String, UInt64)),
    `note` String
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `repair_id`, `step`, `attempt`)
TTL toDateTime(`at`) + INTERVAL 90 DAY
