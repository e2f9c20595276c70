CREATE TABLE IF NOT EXISTS {{table}}
(
    `__slice` String,
    `kept` UInt64,
    `at` DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (`__slice`)
TTL `at` + INTERVAL {{ttlSeconds}} SECOND
SETTINGS non_replicated_deduplication_window = 10000
