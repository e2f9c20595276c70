CREATE TABLE IF NOT EXISTS {{table}}
(
{{keyColumns}},
    `__t` DateTime64(3, 'UTC'),
    `__slice` String
)
ENGINE = MergeTree
PARTITION BY {{partitionBy}}
ORDER BY ({{key}})
TTL toDateTime(`__t`) + INTERVAL {{ttlSeconds}} SECOND
SETTINGS non_replicated_deduplication_window = 10000
