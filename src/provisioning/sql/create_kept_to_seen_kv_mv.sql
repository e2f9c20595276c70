CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{seenKv}}
AS SELECT {{kvHash}} AS `h`, `__t`, sipHash64(`__slice`) AS `__s`
FROM {{kept}}
WHERE `__kv_write`
