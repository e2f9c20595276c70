INSERT INTO {{kept}} ({{columns}}, `__t`, `__slice`)
WITH
    -- Time bounds and key set read staging directly: re-delivered coordinates change neither.
    (SELECT (min(`__t`), max(`__t`)) FROM {{staging}} WHERE {{ranges}}) AS bounds,
    kept AS
    (
        SELECT tupleElement(r, 2) AS `_topic`, tupleElement(r, 3) AS `_partition`, tupleElement(r, 4) AS `_offset`
        FROM
        (
            -- Per key, its occurrences as small (t, topic, partition, offset) tuples in processing order.
            SELECT {{key}}, arraySort(groupArray(tuple(toUnixTimestamp64Milli(`__t`), `_topic`, `_partition`, `_offset`))) AS occ
            FROM (SELECT {{key}}, `__t`, `_topic`, `_partition`, `_offset` FROM {{staging}} WHERE {{ranges}} LIMIT 1 BY `_topic`, `_partition`, `_offset`)
            GROUP BY {{key}}
        ) AS g
        LEFT JOIN
        (
            -- Kept times of these keys near the slice. A re-run slice must not count the keys
            -- its own first attempt wrote: that attempt's final rows may not have landed
            -- (the deduplication token skips whatever did).
            SELECT {{key}}, groupArray(toUnixTimestamp64Milli(`__t`)) AS prior
            FROM {{seen}}
            WHERE ({{key}}) IN (SELECT {{key}} FROM {{staging}} WHERE {{ranges}})
              AND `__t` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
              AND `__t` < tupleElement(bounds, 2) + toIntervalMillisecond({windowMs:Int64})
              AND `__slice` != {slice:String}
            GROUP BY {{key}}
        ) AS s USING ({{key}})
        -- Greedy first wins: an occurrence is kept unless a kept one of its key is closer than
        -- the window. A key seen once, with nothing kept near it, needs no fold.
        ARRAY JOIN
            if(length(occ) = 1 AND empty(prior), occ,
                arrayMap(i -> occ[i],
                    arrayFold((acc, o, i) -> if(arrayExists(k -> abs(o.1 - k) < {windowMs:Int64}, acc.1), acc,
                                               (arrayPushBack(acc.1, o.1), arrayPushBack(acc.2, i))),
                              occ, arrayEnumerate(occ), (prior, CAST([], 'Array(UInt32)'))).2)) AS r
    )
SELECT {{columns}}, `__t`, {slice:String} AS `__slice`
FROM {{staging}}
WHERE ({{ranges}}) AND (`_topic`, `_partition`, `_offset`) IN kept
LIMIT 1 BY `_topic`, `_partition`, `_offset`
