INSERT INTO {{seenKv}} (`h`, `__t`, `__s`)
-- The slice's seen keys as they landed (read back), each key's latest kept time: an entry
-- moves only forward in time, so it always holds the key's latest kept time. Writing the
-- same entries again changes nothing (RocksDB keeps the last value of a key): idempotent.
WITH
    (SELECT (min(`__t`), max(`__t`)) FROM {{staging}} WHERE {{ranges}}) AS bounds
SELECT landed.h, landed.t, sipHash64({slice:String})
FROM
(
    SELECT {{kvHash}} AS h, max(`__t`) AS t
    FROM {{seen}}
    PREWHERE `__h` IN (SELECT sipHash64({{key}}) FROM {{staging}} WHERE {{ranges}})
    WHERE `__slice` = {slice:String}
      AND `__t` >= tupleElement(bounds, 1) AND `__t` <= tupleElement(bounds, 2)
    GROUP BY h
) AS landed
LEFT JOIN
(
    SELECT `h` AS h, `__t` AS old_t FROM {{seenKv}}
    WHERE `h` IN (SELECT {{kvHash}} FROM {{staging}} WHERE {{ranges}})
) AS entries USING (h)
WHERE entries.old_t <= landed.t
