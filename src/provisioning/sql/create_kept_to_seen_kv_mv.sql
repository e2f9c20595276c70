CREATE MATERIALIZED VIEW IF NOT EXISTS {{view}} TO {{seenKv}}
AS SELECT landed.h AS `h`, landed.t AS `__t`, landed.s AS `__s`
FROM
(
    SELECT {{kvHash}} AS h, max(`__t`) AS t, sipHash64(any(`__slice`)) AS s
    FROM {{kept}}
    GROUP BY h
) AS landed
LEFT JOIN {{seenKv}} AS entries ON landed.h = entries.h
WHERE ifNull(entries.`__t` <= landed.t, 1)
