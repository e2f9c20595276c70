CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{errors}}
AS SELECT `_raw`, `__error`, `_topic`, `_partition`, `_offset`, `_timestamp_ms`, `_ingested_at`
FROM {{parsed}}
WHERE `__error` != ''
