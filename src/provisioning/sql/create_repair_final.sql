CREATE TABLE IF NOT EXISTS {{table}}
(
    `__repair` String,
{{columns}},
    `__found` UInt32,
    `__copies` UInt32,
    `__saved_at` DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (`__repair`, {{key}})
TTL `__saved_at` + INTERVAL 90 DAY
