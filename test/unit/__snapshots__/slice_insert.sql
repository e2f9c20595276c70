-- The slice insert (src/slicing/slice.ts, slice_insert.sql) for the reference pipeline of test/unit/statements.test.ts.
-- Rewritten by `npx vitest run --project unit -u`; review a change against ARCHITECTURE.md, the slice protocol.
-- parameters: {"rt0":"users","rp0":0,"rf0":100,"re0":199,"rt1":"users","rp1":1,"rf1":0,"re1":49,"slice":"users-7-0123456789ab","windowMs":3600000}

INSERT INTO `default`.`winnow_users_kept` (`event_id`, `user_id`, `name`, `email`, `created_at`, `__t`, `__slice`)
WITH
    -- Time bounds read staging directly: re-delivered coordinates change neither.
    (SELECT (min(`__t`), max(`__t`)) FROM `default`.`winnow_users_staging` WHERE (`_topic` = {rt0:String} AND `_partition` = {rp0:UInt32} AND `_offset` BETWEEN {rf0:UInt64} AND {re0:UInt64})
       OR (`_topic` = {rt1:String} AND `_partition` = {rp1:UInt32} AND `_offset` BETWEEN {rf1:UInt64} AND {re1:UInt64})) AS bounds,
    -- Kept times of the slice's keys near the slice, found by key hash (8 bytes a seen key to
    -- read and probe), grouped by the key itself. A re-run slice must not count the keys its
    -- own first attempt wrote: that attempt's final rows may not have landed (the
    -- deduplication token skips whatever did). Computed once (enable_materialized_cte).
    kept_near AS MATERIALIZED
    (
        SELECT `event_id`, groupArray(toUnixTimestamp64Milli(`__t`)) AS kept_times
        FROM `default`.`winnow_users_seen`
        PREWHERE `__h` IN (SELECT sipHash64(`event_id`) FROM `default`.`winnow_users_staging` WHERE (`_topic` = {rt0:String} AND `_partition` = {rp0:UInt32} AND `_offset` BETWEEN {rf0:UInt64} AND {re0:UInt64})
       OR (`_topic` = {rt1:String} AND `_partition` = {rp1:UInt32} AND `_offset` BETWEEN {rf1:UInt64} AND {re1:UInt64}))
        WHERE `__t` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
          AND `__t` < tupleElement(bounds, 2) + toIntervalMillisecond({windowMs:Int64})
          AND `__slice` != {slice:String}
        GROUP BY `event_id`
    ),
    -- Keys that need deciding: staged more than once (occurrences or re-delivered copies), or
    -- with a kept time near the slice. Every other staged row is its key's only occurrence.
    contested AS MATERIALIZED
    (
        SELECT `event_id` FROM `default`.`winnow_users_staging` WHERE (`_topic` = {rt0:String} AND `_partition` = {rp0:UInt32} AND `_offset` BETWEEN {rf0:UInt64} AND {re0:UInt64})
       OR (`_topic` = {rt1:String} AND `_partition` = {rp1:UInt32} AND `_offset` BETWEEN {rf1:UInt64} AND {re1:UInt64}) GROUP BY `event_id` HAVING count() > 1
        UNION ALL
        SELECT `event_id` FROM kept_near
    )
-- Sorted by every column, so the rows reach the insert in chunks that depend on the rows alone:
-- the token's block ids (token + source chunk numbers) are the same on every run of the slice.
SELECT *
FROM
(
    SELECT `event_id`, `user_id`, `name`, `email`, `created_at`, `__t`, {slice:String}
    FROM `default`.`winnow_users_staging`
    WHERE ((`_topic` = {rt0:String} AND `_partition` = {rp0:UInt32} AND `_offset` BETWEEN {rf0:UInt64} AND {re0:UInt64})
       OR (`_topic` = {rt1:String} AND `_partition` = {rp1:UInt32} AND `_offset` BETWEEN {rf1:UInt64} AND {re1:UInt64})) AND (`event_id`) NOT IN contested
    UNION ALL
    SELECT tupleElement(kept_row, 1), tupleElement(kept_row, 2), tupleElement(kept_row, 3), tupleElement(kept_row, 4), tupleElement(kept_row, 5), tupleElement(kept_row, 6), {slice:String}
    FROM
    (
        -- Per contested key, its staged occurrences in processing order, each as
        -- ((t, topic, partition, offset), (columns..., __t)).
        SELECT `event_id`, arraySort(x -> x.1, groupArray((tuple(toUnixTimestamp64Milli(`__t`), `_topic`, `_partition`, `_offset`), tuple(`event_id`, `user_id`, `name`, `email`, `created_at`, `__t`)))) AS occurrences
        FROM `default`.`winnow_users_staging`
        WHERE ((`_topic` = {rt0:String} AND `_partition` = {rp0:UInt32} AND `_offset` BETWEEN {rf0:UInt64} AND {re0:UInt64})
       OR (`_topic` = {rt1:String} AND `_partition` = {rp1:UInt32} AND `_offset` BETWEEN {rf1:UInt64} AND {re1:UInt64})) AND (`event_id`) IN contested
        GROUP BY `event_id`
    ) AS contested_occurrences
    LEFT JOIN kept_near USING (`event_id`)
    -- Greedy first wins: an occurrence is kept unless a kept one of its key is closer than the
    -- window, or it is a re-delivered copy of an earlier occurrence (same coordinates). The fold
    -- carries (kept times, indexes of the occurrences kept), starting from the times kept before.
    ARRAY JOIN
        arrayMap(x -> x.2,
            arrayMap(i -> occurrences[i],
                arrayFold((acc, o, i) -> if(
                        arrayFirstIndex(y -> y.1.2 = o.1.2 AND y.1.3 = o.1.3 AND y.1.4 = o.1.4, occurrences) < i
                            OR arrayExists(k -> abs(o.1.1 - k) < {windowMs:Int64}, acc.1),
                        acc,
                        (arrayPushBack(acc.1, o.1.1), arrayPushBack(acc.2, i))),
                    occurrences, arrayEnumerate(occurrences), (kept_times, CAST([], 'Array(UInt32)'))).2)) AS kept_row
)
ORDER BY ALL;
