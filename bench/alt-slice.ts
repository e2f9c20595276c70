/**
 * An alternative slice insert, for measuring only (--slice-sql coordinates):
 * winnow's previous form, kept to compare against sql/slice_insert.sql (which
 * carries whole rows through the grouping and looks seen keys up by hash).
 * The same windowed first-wins result, computed on small tuples. Per key it sorts (t, topic, partition, offset) only; a key seen once
 * in the slice with no prior occurrence within reach is kept without the fold;
 * the kept coordinates then pick the rows from staging. The time bounds and the
 * key set for the seen-keys lookup read staging directly (re-delivered
 * coordinates change neither), so LIMIT BY runs once, not four times. No final
 * ORDER BY: the insert is one block whose order nothing depends on.
 * Same parameters as sliceInsertSql.
 */
import type { PipelineConfig } from '../src/config/index.ts';
import { ident, qualified } from '../src/clickhouse/sql.ts';
import { objectNames } from '../src/provisioning/objects.ts';
import { rangesCondition, type SliceRange } from '../src/slicing/slice.ts';

/** The ranges a rendered slice insert was given, read back from its parameters (r{t,p,f,e}{i}). */
export function rangesFromParams(params: Record<string, unknown>): SliceRange[] {
  const out: SliceRange[] = [];
  for (let i = 0; `rt${i}` in params; i++) {
    out.push({ topic: String(params[`rt${i}`]), partition: Number(params[`rp${i}`]), fromOffset: Number(params[`rf${i}`]), toOffset: Number(params[`re${i}`]) });
  }
  return out;
}

export function coordinatesFirstInsert(p: PipelineConfig, ranges: SliceRange[]): string {
  const n = objectNames(p);
  const staging = qualified(n.database, n.staging);
  const cols = p.columns.map((c) => ident(c.name)).join(', ');
  const key = p.dedup.key.map(ident).join(', ');
  const where = rangesCondition(ranges).sql;
  const coord = '`_topic`, `_partition`, `_offset`';
  return `INSERT INTO ${qualified(n.database, n.kept)} (${cols}, \`__t\`, \`__slice\`)
WITH
  (SELECT (min(\`__t\`), max(\`__t\`)) FROM ${staging} WHERE ${where}) AS bounds,
  kept AS
  (
    SELECT tupleElement(r, 2) AS \`_topic\`, tupleElement(r, 3) AS \`_partition\`, tupleElement(r, 4) AS \`_offset\`
    FROM
    (
      SELECT ${key}, arraySort(groupArray(tuple(toUnixTimestamp64Milli(\`__t\`), ${coord}))) AS occ
      FROM (SELECT ${key}, \`__t\`, ${coord} FROM ${staging} WHERE ${where} LIMIT 1 BY ${coord})
      GROUP BY ${key}
    ) AS g
    LEFT JOIN
    (
      SELECT ${key}, groupArray(toUnixTimestamp64Milli(\`__t\`)) AS prior
      FROM ${qualified(n.database, n.seen)}
      WHERE (${key}) IN (SELECT ${key} FROM ${staging} WHERE ${where})
        AND \`__t\` > tupleElement(bounds, 1) - toIntervalMillisecond({windowMs:Int64})
        AND \`__t\` < tupleElement(bounds, 2) + toIntervalMillisecond({windowMs:Int64})
      GROUP BY ${key}
    ) AS s USING (${key})
    ARRAY JOIN
      if(length(occ) = 1 AND empty(prior), occ,
        arrayMap(i -> occ[i],
          arrayFold((acc, o, i) -> if(arrayExists(k -> abs(o.1 - k) < {windowMs:Int64}, acc.1), acc,
                                     (arrayPushBack(acc.1, o.1), arrayPushBack(acc.2, i))),
                    occ, arrayEnumerate(occ), (prior, CAST([], 'Array(UInt32)'))).2)) AS r
  )
SELECT ${cols}, \`__t\`, {slice:String} AS \`__slice\`
FROM ${staging}
WHERE (${where}) AND (${coord}) IN kept
LIMIT 1 BY ${coord}`;
}
