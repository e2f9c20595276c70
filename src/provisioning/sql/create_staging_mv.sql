CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{staging}}
AS SELECT {{columns}}, `__t`, `_topic`, `_partition`, `_offset`, `_timestamp_ms`, `_ingested_at`
FROM {{parsed}}
WHERE `__error` = ''
