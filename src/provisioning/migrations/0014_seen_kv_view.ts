import { ident, qualified } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/**
 * dedup.index rocksdb: the seen-key index is written by the slice insert
 * itself. winnow_<p>_kept_to_seen_kv_mv reads the kept rows of the tokened
 * insert (the block, no read of the seen keys) and writes per 128-bit key hash
 * the block's latest kept time and slice into winnow_<p>_seen_kv, unless the
 * key's entry is later already (a LEFT JOIN on the index's primary key: point
 * lookups, ClickHouse's direct join): entries only move forward in time, so a
 * re-run writes the same entries. Before this, a slice read its seen keys back
 * into the index after the insert (a scan that grew with the seen keys). A
 * pipeline with `dedup.index: scan` gets nothing. Frozen: never edit, a later
 * change is a new migration.
 */
export const migration: WinnowMigration = {
  name: '0014_seen_kv_view',
  async up(ctx) {
    const p = ctx.pipeline;
    if (p.dedup.index !== 'rocksdb') return;
    const db = p.sink.database;
    const view = `winnow_${p.name}_kept_to_seen_kv_mv`;
    const kv = qualified(db, `winnow_${p.name}_seen_kv`);
    const hash = `reinterpretAsUInt128(sipHash128(${p.dedup.key.map(ident).join(', ')}))`;
    const sql = `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(db, view)} TO ${kv}
AS SELECT landed.h AS \`h\`, landed.t AS \`__t\`, landed.s AS \`__s\`
FROM
(
    SELECT ${hash} AS h, max(\`__t\`) AS t, sipHash64(any(\`__slice\`)) AS s
    FROM ${qualified(db, `winnow_${p.name}_kept`)}
    GROUP BY h
) AS landed
LEFT JOIN ${kv} AS entries ON landed.h = entries.h
WHERE ifNull(entries.\`__t\` <= landed.t, 1)`;
    await ctx.run([statement(`seen-key index view ${view}`, sql)]);
  },
  async down(ctx) {
    const p = ctx.pipeline;
    const view = `winnow_${p.name}_kept_to_seen_kv_mv`;
    await ctx.run([statement(`drop view ${view}`, `DROP VIEW IF EXISTS ${qualified(p.sink.database, view)} SYNC`)]);
  },
};
