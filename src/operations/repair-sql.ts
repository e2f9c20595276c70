/**
 * The SQL of a doubled-slice repair (see repair.ts). Pure functions; values go
 * as query parameters. A "doubled group" is one seen key (key, __t, __slice)
 * present more than once: one slice kept that row twice.
 */
import { ident, qualified, type ParamSql } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames, REPAIRS_TABLE } from '../provisioning/objects.ts';

interface Parts {
  key: string;
  cols: string;
  final: string;
  seen: string;
  saveFinal: string;
  saveSeen: string;
  log: string;
}

function parts(p: PipelineConfig): Parts {
  const n = objectNames(p);
  return {
    key: p.dedup.key.map(ident).join(', '),
    cols: p.columns.map((c) => ident(c.name)).join(', '),
    final: qualified(n.database, n.final),
    seen: qualified(n.database, n.seen),
    saveFinal: qualified(n.database, n.repairFinal),
    saveSeen: qualified(n.database, n.repairSeen),
    log: qualified(n.database, REPAIRS_TABLE),
  };
}

/** Doubled groups among the seen keys `scope` selects (a condition on the seen-keys table). */
function doubledSql(x: Parts, scope: string): string {
  return `SELECT ${x.key}, \`__t\`, \`__slice\`, count() AS c, max(\`__at\`) AS at FROM ${x.seen}
    PREWHERE ${scope}
    GROUP BY ${x.key}, \`__t\`, \`__slice\` HAVING c > 1`;
}

/** How many doubled groups, keys and extra seen copies the scope holds (read only). */
export function doubledSummarySql(p: PipelineConfig, scope: ParamSql): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT count() AS groups, uniqExact(${x.key}) AS keys, sum(c - 1) AS extra FROM (${doubledSql(x, scope.sql)})`,
    params: scope.params,
  };
}

/** Write-ahead copy of each doubled seen key: one copy is what must remain. */
export function saveSeenSql(p: PipelineConfig, scope: ParamSql, repairId: string): ParamSql {
  const x = parts(p);
  return {
    sql: `INSERT INTO ${x.saveSeen} (\`__repair\`, ${x.key}, \`__t\`, \`__slice\`, \`__at\`, \`__found\`, \`__copies\`)
    SELECT {repair:String}, ${x.key}, \`__t\`, \`__slice\`, at, c, 1 FROM (${doubledSql(x, scope.sql)})`,
    params: { ...scope.params, repair: repairId },
  };
}

/**
 * Write-ahead copy of each final row value of a doubled key held more than
 * once, with the copies that must remain: the slice wrote `extra` copies too
 * many for the key (its seen groups' surplus), taken from its duplicated
 * values in a fixed order. A value also kept legitimately more than once (a
 * key kept again outside the window with identical columns) keeps those.
 */
export function saveFinalSql(p: PipelineConfig, repairId: string): ParamSql {
  const x = parts(p);
  const keyOf = `SELECT ${x.key} FROM ${x.saveSeen} WHERE \`__repair\` = {repair:String}`;
  return {
    sql: `INSERT INTO ${x.saveFinal} (\`__repair\`, ${x.cols}, \`__found\`, \`__copies\`)
    SELECT {repair:String}, ${p.columns.map((_c, i) => `tupleElement(v.3, ${i + 1})`).join(', ')}, v.2, copies FROM (
      SELECT v, v.2 - least(v.2 - 1, greatest(0, toInt64(extra) - (toInt64(c) - toInt64(v.2 - 1)))) AS copies FROM (
        SELECT any(extra) AS extra, arraySort(groupArray((h, m, r))) AS vs FROM (
          SELECT ${x.key}, h, m, r, extra FROM (
            SELECT ${x.key}, count() AS m, cityHash64(${x.cols}) AS h, tuple(${x.cols}) AS r FROM ${x.final}
            WHERE (${x.key}) IN (${keyOf})
            GROUP BY ${x.cols} HAVING m > 1) AS f
          INNER JOIN (
            SELECT ${x.key}, sum(\`__found\` - \`__copies\`) AS extra FROM ${x.saveSeen} WHERE \`__repair\` = {repair:String} GROUP BY ${x.key}) AS s
          USING (${x.key}))
        GROUP BY ${x.key})
      ARRAY JOIN vs AS v, arrayCumSum(arrayMap(y -> y.2 - 1, vs)) AS c)
    WHERE copies < v.2`,
    params: { repair: repairId },
  };
}

/** Distinct keys a repair saved. */
export function savedKeysSql(p: PipelineConfig, repairId: string): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT count() AS n FROM (SELECT DISTINCT ${x.key} FROM ${x.saveSeen} WHERE \`__repair\` = {r:String})`,
    params: { r: repairId },
  };
}

export type RepairTarget = 'final' | 'seen';

/** Copies a repair removes from one table, as saved: found minus what must remain. */
export function savedSurplusSql(p: PipelineConfig, t: RepairTarget, repairId: string): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT sum(\`__found\` - \`__copies\`) AS n FROM ${t === 'final' ? x.saveFinal : x.saveSeen} WHERE \`__repair\` = {r:String}`,
    params: { r: repairId },
  };
}

interface TargetParts {
  table: string;
  saved: string;
  /** the columns that make a row's value */
  row: string;
}

function target(x: Parts, t: RepairTarget): TargetParts {
  return t === 'final'
    ? { table: x.final, saved: x.saveFinal, row: x.cols }
    : { table: x.seen, saved: x.saveSeen, row: `${x.key}, \`__t\`, \`__slice\`` };
}

/** Current copies of each saved row value, with the physical coordinates of each copy. */
function currentSql(x: Parts, t: TargetParts): string {
  return `SELECT tuple(${t.row}) AS r, _part AS part, _part_offset AS off FROM ${t.table}
      WHERE (${x.key}) IN (SELECT ${x.key} FROM ${t.saved} WHERE \`__repair\` = {repair:String})
        AND tuple(${t.row}) IN (SELECT tuple(${t.row}) FROM ${t.saved} WHERE \`__repair\` = {repair:String})`;
}

/**
 * Where the table stands against the saved copies: the coordinates of the
 * copies beyond what must remain (the lowest coordinates are kept), and how
 * many copies are missing below it (only if something deleted too much).
 */
function stateSql(x: Parts, tp: TargetParts): string {
  return `SELECT
        arrayFlatten(groupArray(arrayFilter((c, i) -> i > copies, cs, arrayEnumerate(cs)))) AS extra,
        sum(greatest(0, toInt64(copies) - toInt64(length(cs)))) AS missing
      FROM (
        SELECT tuple(${tp.row}) AS r, any(\`__copies\`) AS copies FROM ${tp.saved} WHERE \`__repair\` = {repair:String} GROUP BY r) AS h
      LEFT JOIN (
        SELECT r, arraySort(groupArray((part, off))) AS cs FROM (${currentSql(x, tp)}) GROUP BY r) AS c
      USING (r)`;
}

/** Copies beyond what must remain, and copies missing, of one table (read only). */
export function reconcileStateSql(p: PipelineConfig, t: RepairTarget, repairId: string): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT length(extra) AS extra, missing FROM (${stateSql(x, target(x, t))})`,
    params: { repair: repairId },
  };
}

/**
 * Logs the coordinates an attempt is about to delete, computed in ClickHouse
 * (a doubled slice can be a million rows): the delete then reads them from
 * the log, so it removes exactly what was looked at, never a copy that must stay.
 */
export function logDeletingSql(p: PipelineConfig, repairId: string, attempt: number, keys: number): ParamSql {
  const x = parts(p);
  return {
    sql: `INSERT INTO ${x.log} (pipeline, repair_id, step, attempt, keys, final_removed, seen_removed, restored, final_coords, seen_coords, note)
      SELECT {pipeline:String}, {repair:String}, 'deleting', {attempt:UInt32}, {keys:UInt64}, length(f.extra), length(s.extra), 0, f.extra, s.extra, ''
      FROM (${stateSql(x, target(x, 'final'))}) AS f CROSS JOIN (${stateSql(x, target(x, 'seen'))}) AS s`,
    params: { pipeline: p.name, repair: repairId, attempt, keys },
  };
}

/** How many copies an attempt set out to delete, as logged. */
export function loggedDeletingSql(p: PipelineConfig, repairId: string, attempt: number): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT final_removed AS final, seen_removed AS seen FROM ${x.log}
      WHERE pipeline = {pipeline:String} AND repair_id = {repair:String} AND step = 'deleting' AND attempt = {attempt:UInt32} LIMIT 1`,
    params: { pipeline: p.name, repair: repairId, attempt },
  };
}

/** Deletes the copies at the coordinates logged for this attempt; coordinates gone stale (merged parts) match nothing. */
export function deleteExtraSql(p: PipelineConfig, t: RepairTarget, repairId: string, attempt: number): ParamSql {
  const x = parts(p);
  const tp = target(x, t);
  const coords = t === 'final' ? 'final_coords' : 'seen_coords';
  return {
    sql: `DELETE FROM ${tp.table}
      WHERE (${x.key}) IN (SELECT ${x.key} FROM ${tp.saved} WHERE \`__repair\` = {repair:String})
        AND (_part, _part_offset) IN (
          SELECT arrayJoin(${coords}) FROM ${x.log}
          WHERE pipeline = {pipeline:String} AND repair_id = {repair:String} AND step = 'deleting' AND attempt = {attempt:UInt32})`,
    params: { repair: repairId, pipeline: p.name, attempt },
  };
}

/** Re-inserts saved copies where fewer than the saved number remain (the write-ahead copy at work). */
export function restoreSql(p: PipelineConfig, t: RepairTarget, repairId: string): ParamSql {
  const x = parts(p);
  const tp = target(x, t);
  const cols = t === 'final' ? x.cols : `${x.key}, \`__t\`, \`__slice\`, \`__at\``;
  return {
    sql: `INSERT INTO ${tp.table} (${cols})
      SELECT ${cols} FROM (
        SELECT ${cols}, toUInt64(greatest(0, toInt64(h.copies) - toInt64(c.n))) AS missing FROM (
          SELECT ${cols}, tuple(${tp.row}) AS r, \`__copies\` AS copies FROM ${tp.saved} WHERE \`__repair\` = {repair:String} LIMIT 1 BY r) AS h
        LEFT JOIN (SELECT r, count() AS n FROM (${currentSql(x, tp)}) GROUP BY r) AS c USING (r))
      ARRAY JOIN range(missing) AS i`,
    params: { repair: repairId },
  };
}

/** A step of a repair without coordinates: saved (what was found) or done (what was removed). */
export function logStepSql(
  p: PipelineConfig,
  s: {
    repairId: string;
    step: 'saved' | 'done';
    attempt: number;
    keys: number;
    finalRemoved: number;
    seenRemoved: number;
    restored: number;
    note: string;
  },
): ParamSql {
  const x = parts(p);
  return {
    sql: `INSERT INTO ${x.log} (pipeline, repair_id, step, attempt, keys, final_removed, seen_removed, restored, note)
      VALUES ({pipeline:String}, {repair:String}, {step:String}, {attempt:UInt32}, {keys:UInt64}, {fr:UInt64}, {sr:UInt64}, {restored:UInt64}, {note:String})`,
    params: {
      pipeline: p.name,
      repair: s.repairId,
      step: s.step,
      attempt: s.attempt,
      keys: s.keys,
      fr: s.finalRemoved,
      sr: s.seenRemoved,
      restored: s.restored,
      note: s.note,
    },
  };
}

/** Repairs of the pipeline that were saved but not finished (a daemon died in the middle). */
export function pendingRepairsSql(p: PipelineConfig): ParamSql {
  const x = parts(p);
  return {
    sql: `SELECT repair_id AS id, max(attempt) AS attempt, argMax(keys, toInt8(step)) AS keys FROM ${x.log}
      WHERE pipeline = {pipeline:String} GROUP BY repair_id HAVING max(toInt8(step)) < 3 ORDER BY min(at)`,
    params: { pipeline: p.name },
  };
}
