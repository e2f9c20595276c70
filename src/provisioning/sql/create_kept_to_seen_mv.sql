CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{seen}}
AS SELECT {{key}}, `__t`, `__slice` FROM {{kept}}
