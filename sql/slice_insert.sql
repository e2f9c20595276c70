INSERT INTO {{kept}} ({{columns}}, `__t`, `__slice`)
WITH
    -- Time bounds read staging directly: re-delivered coordinates change neither.
    (SELECT (min(`__t`), max(`__t`)) FROM {{staging}} WHERE {{ranges}}) AS bounds
SELECT {{rowColumns}}, {slice:String} AS `__slice`
FROM
(
    -- Per key, its staged occurrences in processing order: (t, topic, partition, offset) and the row.
    SELECT {{key}}, arraySort(x -> x.1, groupArray((tuple(toUnixTimestamp64Milli(`__t`), `_topic`, `_partition`, `_offset`), tuple({{columns}}, `__t`)))) AS occ
    FROM {{staging}}
    WHERE {{ranges}}
    GROUP BY {{key}}
) AS g
LEFT JOIN
(
    -- Kept times of these keys near the slice, found by key hash (8 bytes a seen key to read
    -- and probe) and then matched on the key itself by the join. A re-run slice must not count
    -- the keys its own first attempt wrote: that attempt's final rows may not have landed
    -- (the deduplication token skips whatever did).
    SELECT {{key}}, groupArray(toUnixTimestamp64Milli(`__t`)) AS prior
    FROM {{seen}}
    PREWHERE `__h` IN (SELECT sipHash64({{key}}) FROM {{staging}} WHERE {{ranges}})
    WHERE `__t` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
      AND `__t` < tupleElement(bounds, 2) + toIntervalMillisecond({windowMs:Int64})
      AND `__slice` != {slice:String}
    GROUP BY {{key}}
) AS s USING ({{key}})
-- Greedy first wins: an occurrence is kept unless a kept one of its key is closer than the
-- window, or it is a re-delivered copy of an earlier occurrence (same coordinates). A key
-- staged once with nothing kept near it needs no fold.
ARRAY JOIN
    arrayMap(x -> x.2,
        if(length(occ) = 1 AND empty(prior), occ,
            arrayMap(i -> occ[i],
                arrayFold((acc, o, i) -> if(
                        arrayFirstIndex(y -> y.1.2 = o.1.2 AND y.1.3 = o.1.3 AND y.1.4 = o.1.4, occ) < i
                            OR arrayExists(k -> abs(o.1.1 - k) < {windowMs:Int64}, acc.1),
                        acc,
                        (arrayPushBack(acc.1, o.1.1), arrayPushBack(acc.2, i))),
                    occ, arrayEnumerate(occ), (prior, CAST([], 'Array(UInt32)'))).2))) AS r
