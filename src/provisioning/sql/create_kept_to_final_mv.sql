CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{final}}
AS SELECT {{columns}} FROM {{kept}}
