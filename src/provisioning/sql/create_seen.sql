CREATE TABLE IF NOT EXISTS {{table}}
(
{{keyColumns}},
    `__t` DateTime64(3, 'UTC'),
    `__slice` String,
    `__h` UInt64 MATERIALIZED sipHash64({{key}}),
    `__at` DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY {{partitionBy}}
ORDER BY ({{key}})
TTL {{ttl}}
SETTINGS non_replicated_deduplication_window = 10000
