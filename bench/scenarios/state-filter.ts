/**
 * Issue 12's candidate "a filter in front" of the seen-key index, probed
 * beside it (state phase, --index rocksdb): a bitmap of 2^32 bits, one bit a
 * seen key (bits 32-63 of its `__h`, one hash), kept in memory by ClickHouse
 * as a FLAT dictionary of 2^26 UInt64 words, built from the seen keys. A
 * slice would look up in the index only the keys whose bit is set: the keys
 * seen before, and the false positives. Measured: the build (GROUP BY over
 * the seen keys, then the dictionary's load), its memory, 100k lookups and
 * the share of absent keys it lets through. Not used by winnow: a probe.
 */
import type { Db } from '../../src/clickhouse/client.ts';
import { median } from '../context.ts';
import { SEEN_SEED, uuidOf } from './state-fill.ts';

export interface FilterProbe {
  /** the GROUP BY that writes the words, and the dictionary's load, seconds */
  buildSeconds: number;
  loadSeconds: number;
  /** the dictionary's bytes_allocated */
  bytes: number;
  /** words with a bit set (of 2^26) */
  words: number;
  /** 100k lookups, median of 3, ms: hashing alone, absent keys, present keys */
  generateMs: number;
  absentMs: number;
  presentMs: number;
  /** share of 100k absent keys whose bit is set (they would go on to the index) */
  falsePositive: number;
  /** present keys whose bit is not set: must be 0 */
  falseNegatives: number;
}

const WORDS = 2 ** 26;

export async function filterProbe(db: Db, database: string, seen: string, seenCount: number): Promise<FilterProbe> {
  const table = `${database}.probe_filter_words`;
  const dict = `${database}.probe_filter`;
  const word = (h: string): string => `bitShiftRight(${h}, 38)`;
  const bit = (h: string): string => `bitShiftLeft(toUInt64(1), bitShiftRight(${h}, 32) % 64)`;
  await db.command(`DROP DICTIONARY IF EXISTS ${dict}`);
  await db.command(`DROP TABLE IF EXISTS ${table}`);
  try {
    await db.command(`CREATE TABLE ${table} (w UInt64, bits UInt64) ENGINE = MergeTree ORDER BY w`);
    let t0 = performance.now();
    await db.command(
      `INSERT INTO ${table} SELECT ${word('`__h`')} AS w, groupBitOr(${bit('`__h`')}) FROM ${database}.${seen} GROUP BY w`,
    );
    const buildSeconds = (performance.now() - t0) / 1000;
    await db.command(
      `CREATE DICTIONARY ${dict} (w UInt64, bits UInt64) PRIMARY KEY w
       SOURCE(CLICKHOUSE(DB '${database}' TABLE 'probe_filter_words'))
       LAYOUT(FLAT(INITIAL_ARRAY_SIZE ${WORDS} MAX_ARRAY_SIZE ${WORDS})) LIFETIME(0)`,
    );
    t0 = performance.now();
    await db.command(`SYSTEM RELOAD DICTIONARY ${dict}`);
    const loadSeconds = (performance.now() - t0) / 1000;
    const [info] = await db.rows<{ bytes: string; words: string }>(
      `SELECT bytes_allocated AS bytes, element_count AS words FROM system.dictionaries
       WHERE database = {db:String} AND name = 'probe_filter'`,
      { db: database },
    );
    const n = 100_000;
    const present = (run: number): string =>
      `sipHash64(${uuidOf(SEEN_SEED, `toUInt64(sipHash64(number, ${run}) % ${seenCount})`)})`;
    const absent = (run: number): string => `sipHash64(number, 'absent', ${run})`;
    const maybe = (h: string): string => `bitAnd(dictGet('${dict}', 'bits', ${word(h)}), ${bit(h)}) != 0`;
    const timed = async (sql: (run: number) => string): Promise<{ ms: number; value: number }> => {
      const ms: number[] = [];
      let value = 0;
      for (let run = 1; run <= 3; run++) {
        const t = performance.now();
        const [r] = await db.rows<{ v: string }>(sql(run + seenCount));
        ms.push(performance.now() - t);
        value = Number(r?.v ?? 0);
      }
      return { ms: median(ms), value };
    };
    const generate = await timed(
      (r) => `SELECT countIf(h != 0) AS v FROM (SELECT ${present(r)} AS h FROM numbers(${n}))`,
    );
    const abs = await timed(
      (r) => `SELECT countIf(${maybe('h')}) AS v FROM (SELECT ${absent(r)} AS h FROM numbers(${n}))`,
    );
    const pre = await timed(
      (r) => `SELECT countIf(NOT ${maybe('h')}) AS v FROM (SELECT ${present(r)} AS h FROM numbers(${n}))`,
    );
    return {
      buildSeconds,
      loadSeconds,
      bytes: Number(info?.bytes ?? 0),
      words: Number(info?.words ?? 0),
      generateMs: generate.ms,
      absentMs: abs.ms,
      presentMs: pre.ms,
      falsePositive: abs.value / n,
      falseNegatives: pre.value,
    };
  } finally {
    await db.command(`DROP DICTIONARY IF EXISTS ${dict}`);
    await db.command(`DROP TABLE IF EXISTS ${table}`);
  }
}
