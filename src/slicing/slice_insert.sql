INSERT INTO {{kept}} ({{columns}}, `__t`, `__slice`{{kvWriteColumn}})
WITH
    -- Time bounds read staging directly: re-delivered coordinates change neither.
    (SELECT (min(`__t`), max(`__t`)) FROM {{staging}} WHERE {{ranges}}) AS bounds,
    {{keptNear}},
    -- Keys that need deciding: staged more than once (occurrences or re-delivered copies), or
    -- with a kept time near the slice. Every other staged row is its key's only occurrence.
    contested AS MATERIALIZED
    (
        SELECT {{key}} FROM {{staging}} WHERE {{ranges}} GROUP BY {{key}} HAVING count() > 1
        UNION ALL
        SELECT {{key}} FROM kept_near
    )
-- Sorted by every column, so the rows reach the insert in chunks that depend on the rows alone:
-- the token's block ids (token + source chunk numbers) are the same on every run of the slice.
SELECT *
FROM
(
    SELECT {{columns}}, `__t`, {slice:String}{{kvWriteSingle}}
    FROM {{staging}}
    WHERE ({{ranges}}) AND ({{key}}) NOT IN contested
    UNION ALL
    SELECT {{keptRowColumns}}, {slice:String}{{kvWriteKept}}
    FROM
    (
        -- Per contested key, its staged occurrences in processing order, each as
        -- ((t, topic, partition, offset), (columns..., __t)).
        SELECT {{key}}, arraySort(x -> x.1, groupArray((tuple(toUnixTimestamp64Milli(`__t`), `_topic`, `_partition`, `_offset`), tuple({{columns}}, `__t`)))) AS occurrences
        FROM {{staging}}
        WHERE ({{ranges}}) AND ({{key}}) IN contested
        GROUP BY {{key}}
    ) AS contested_occurrences
    LEFT JOIN kept_near USING ({{key}}){{kvEntryJoin}}
    -- Greedy first wins: an occurrence is kept unless a kept one of its key is closer than the
    -- window, or it is a re-delivered copy of an earlier occurrence (same coordinates). The fold
    -- carries (kept times, indexes of the occurrences kept), starting from the times kept before.
    ARRAY JOIN
        {{keptRowsOpen}}arrayMap(x -> x.2,
            arrayMap(i -> occurrences[i],
                arrayFold((acc, o, i) -> if(
                        arrayFirstIndex(y -> y.1.2 = o.1.2 AND y.1.3 = o.1.3 AND y.1.4 = o.1.4, occurrences) < i
                            OR arrayExists(k -> abs(o.1.1 - k) < {windowMs:Int64}, acc.1),
                        acc,
                        (arrayPushBack(acc.1, o.1.1), arrayPushBack(acc.2, i))),
                    occurrences, arrayEnumerate(occurrences), (kept_times, CAST([], 'Array(UInt32)'))).2)){{keptRowsClose}} AS kept_row
)
ORDER BY ALL
