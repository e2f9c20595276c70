import { ident, qualified, quoteString } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/**
 * dedup.index rocksdb: the seen-key index's view no longer looks each key up
 * again. The slice insert reads every key's entry anyway (its `kv_hits`); it
 * now says in each kept row, in the new column `__kv_write` of
 * winnow_<p>_kept, whether that row is its key's latest kept row of the
 * insert and the entry it read is not later. winnow_<p>_kept_to_seen_kv_mv
 * writes exactly those rows (no GROUP BY, no join): one RocksDB point lookup
 * a key instead of two, and entries still only move forward.
 *
 * Upgrade order, for a pipeline whose daemon runs while this migrates:
 * 1. the column, with a DEFAULT that throws: an older slice insert (it names
 *    no `__kv_write`) fails before any row reaches a view, so it writes
 *    nothing (no final row, no seen key, no entry) and is re-run later by the
 *    new code under its token; a newer one names the column and is written
 *    by the view as 0014 built it (its join decides, the column is ignored);
 * 2. the view's query, replaced in place (MODIFY QUERY: an insert uses the
 *    query it started with, so no insert runs with neither query).
 * A DEFAULT of 0 instead would let an older insert through whose rows the new
 * view skips: its keys would get no entry. A pipeline with `dedup.index: scan`
 * gets nothing. Frozen: never edit, a later change is a new migration.
 */
export const migration: WinnowMigration = {
  name: '0015_seen_kv_carried_entry',
  async up(ctx) {
    const p = ctx.pipeline;
    if (p.dedup.index !== 'rocksdb') return;
    const db = p.sink.database;
    const kept = qualified(db, `winnow_${p.name}_kept`);
    const view = `winnow_${p.name}_kept_to_seen_kv_mv`;
    const refusal = quoteString(
      `winnow_${p.name}_kept: this slice insert names no __kv_write: it is older than migration 0015; upgrade winnow`,
    );
    const column = `ALTER TABLE ${kept} ADD COLUMN IF NOT EXISTS \`__kv_write\` UInt8 DEFAULT throwIf(length(\`__slice\`) >= 0, ${refusal})`;
    const hash = `reinterpretAsUInt128(sipHash128(${p.dedup.key.map(ident).join(', ')}))`;
    const query = `ALTER TABLE ${qualified(db, view)} MODIFY QUERY
SELECT ${hash} AS \`h\`, \`__t\`, sipHash64(\`__slice\`) AS \`__s\`
FROM ${kept}
WHERE \`__kv_write\``;
    await ctx.run([
      statement(`dedup entry point winnow_${p.name}_kept: column __kv_write`, column),
      statement(`seen-key index view ${view}: writes the rows marked __kv_write`, query),
    ]);
  },
  async down() {
    // Nothing of its own to undo: the view goes with 0014's down, the index with 0013's, the kept table with 0002's.
  },
};
