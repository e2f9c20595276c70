CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{counts}}
AS SELECT `__slice`, count() AS `kept` FROM {{kept}} GROUP BY `__slice`
