CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{parsed}}
AS {{validated}}
