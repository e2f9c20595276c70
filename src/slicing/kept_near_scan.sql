    -- Kept times of the slice's keys near the slice, found by key hash (8 bytes a seen key to
    -- read and probe), grouped by the key itself. A re-run slice must not count the keys its
    -- own first attempt wrote: that attempt's final rows may not have landed (the
    -- deduplication token skips whatever did). Computed once (enable_materialized_cte).
    kept_near AS MATERIALIZED
    (
        SELECT {{key}}, groupArray(toUnixTimestamp64Milli(`__t`)) AS kept_times
        FROM {{seen}}
        PREWHERE `__h` IN (SELECT sipHash64({{key}}) FROM {{staging}} WHERE {{ranges}})
        WHERE `__t` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
          AND `__t` < tupleElement(bounds, 2) + toIntervalMillisecond({windowMs:Int64})
          AND `__slice` != {slice:String}
        GROUP BY {{key}}
    )
