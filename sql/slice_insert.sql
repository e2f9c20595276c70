INSERT INTO {{kept}} ({{columns}}, `__t`, `__slice`)
WITH slice AS
(
    SELECT {{columns}}, `__t`, `_topic`, `_partition`, `_offset`
    FROM {{staging}}
    WHERE {{ranges}}
    LIMIT 1 BY `_topic`, `_partition`, `_offset`
)
SELECT {{keptColumns}}, tupleElement(r, 5) AS `__t`, {slice:String} AS `__slice`
FROM
(
    SELECT
        {{key}},
        arraySort(o -> (o.1, o.2, o.3, o.4),
            groupArray(tuple(toUnixTimestamp64Milli(`__t`), `_topic`, `_partition`, `_offset`, `__t`, {{columns}}))) AS occ
    FROM slice
    GROUP BY {{key}}
) AS g
LEFT JOIN
(
    SELECT {{key}}, groupArray(toUnixTimestamp64Milli(`__t`)) AS prior
    FROM {{seen}}
    WHERE ({{key}}) IN (SELECT {{key}} FROM slice)
      -- A re-run slice must not count the keys its own first attempt wrote: that attempt's
      -- final rows may not have landed (the token skips whatever did).
      AND `__slice` != {slice:String}
      AND `__t` > (SELECT min(`__t`) FROM slice) - toIntervalMillisecond({windowMs:Int64})
      AND `__t` < (SELECT max(`__t`) FROM slice) + toIntervalMillisecond({windowMs:Int64})
    GROUP BY {{key}}
) AS s USING ({{key}})
ARRAY JOIN
    arrayMap(i -> occ[i],
        arrayFold((acc, o, i) -> if(arrayExists(k -> abs(o.1 - k) < {windowMs:Int64}, acc.1), acc,
                                   (arrayPushBack(acc.1, o.1), arrayPushBack(acc.2, i))),
                  occ, arrayEnumerate(occ), (prior, CAST([], 'Array(UInt32)'))).2) AS r
ORDER BY tupleElement(r, 1), tupleElement(r, 2), tupleElement(r, 3), tupleElement(r, 4)
