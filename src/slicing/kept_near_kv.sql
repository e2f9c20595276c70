    -- dedup.index rocksdb: kept times of the slice's keys from the seen-key index, point lookups
    -- by 128-bit key hash, whatever the size of the seen keys. An entry holds the key's latest
    -- kept time and the slice that kept it; entries more than a window before the slice cannot
    -- matter. Computed once (enable_materialized_cte).
    kv_hits AS MATERIALIZED
    (
        SELECT `h`, `__t` AS entry_t, `__s` AS entry_s
        FROM {{seenKv}}
        WHERE `h` IN (SELECT {{kvHash}} FROM {{staging}} WHERE {{ranges}})
          AND `__t` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
    ),
    -- Per staged key with an entry: the entry, and the key's earliest time in the slice.
    kv_keys AS MATERIALIZED
    (
        SELECT {{key}}, any(entry_t) AS kv_t, any(entry_s) AS kv_s, min(st_t) AS first_t,
            -- The latest kept time decides every occurrence not more than a window before it
            -- (kept times of a key are a window apart: one within the window of an occurrence
            -- is this one, or none is). It cannot decide when the key has an occurrence a
            -- window or more before it (older kept times may be near), nor when the entry
            -- names this slice: a re-run whose first attempt wrote the index, the entry it
            -- replaced is gone. Those keys are looked up in the seen keys, as the scan would.
            kv_s = sipHash64({slice:String}) OR first_t <= kv_t - toIntervalMillisecond({windowMs:Int64}) AS fallback
        FROM (SELECT {{key}}, `__t` AS st_t, {{kvHash}} AS `h` FROM {{staging}} WHERE {{ranges}}) AS st
        INNER JOIN kv_hits USING (`h`)
        GROUP BY {{key}}
    ),
    kept_near AS MATERIALIZED
    (
        SELECT {{key}}, [toUnixTimestamp64Milli(kv_t)] AS kept_times
        FROM kv_keys
        WHERE NOT fallback
        UNION ALL
        -- The scan's lookup, for the few keys the index cannot decide, through the primary key.
        SELECT {{key}}, groupArray(toUnixTimestamp64Milli(`__t`)) AS kept_times
        FROM {{seen}}
        WHERE ({{key}}) IN (SELECT {{key}} FROM kv_keys WHERE fallback)
          AND `__t` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
          AND `__t` < tupleElement(bounds, 2) + toIntervalMillisecond({windowMs:Int64})
          AND `__slice` != {slice:String}
        GROUP BY {{key}}
    ),
    -- Staged keys whose entry is later than their first staged time. A key staged once (not
    -- contested) is its own latest kept row: the index's view writes it unless it is here.
    kv_ahead AS MATERIALIZED
    (
        SELECT {{key}} FROM kv_keys WHERE kv_t > first_t
    )
