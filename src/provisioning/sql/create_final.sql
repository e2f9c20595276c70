CREATE TABLE IF NOT EXISTS {{table}}
(
{{columns}}
)
ENGINE = {{engine}}
{{partitionBy}}ORDER BY ({{orderBy}})
SETTINGS non_replicated_deduplication_window = 10000
