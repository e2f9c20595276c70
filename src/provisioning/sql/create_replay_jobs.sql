CREATE TABLE IF NOT EXISTS {{table}}
(
    `pipeline` LowCardinality(String),
    `job_id` String,
    `rev` UInt32,
    `kind` Enum8('replay' = 1, 'deadletters' = 2),
    `state` Enum8('queued' = 1, 'running' = 2, 'done' = 3, 'failed' = 4),
    `request` String,
    `requested_by` String,
    `requested_at` DateTime64(3, 'UTC'),
    `holder` String,
    `attempt` UInt32,
    `plan` String,
    `chunks_done` UInt32,
    `chunks_total` UInt32,
    `offsets_done` UInt64,
    `offsets_total` UInt64,
    `rows_in` UInt64,
    `inserted` UInt64,
    `result` String,
    `error` String,
    `updated_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `job_id`, `rev`)
TTL toDateTime(`updated_at`) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000
