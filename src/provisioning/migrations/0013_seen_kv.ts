import { qualified } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/**
 * The seen-key index of a pipeline with `dedup.index: rocksdb`:
 * winnow_<p>_seen_kv, an EmbeddedRocksDB table keyed by a 128-bit hash of the
 * dedup key (`h`), holding the latest kept time of the key (`__t`) and the
 * slice that kept it (`__s`, sipHash64 of the slice id). The seen-keys table
 * stays the record; a slice writes the index from it after its insert (read
 * back, idempotent). RocksDB's TTL (twice the window, from the write) frees
 * space; lookups bound `__t` themselves. A pipeline with `dedup.index: scan`
 * (the default) gets nothing. Frozen: never edit, a later change is a new
 * migration.
 */
export const migration: WinnowMigration = {
  name: '0013_seen_kv',
  async up(ctx) {
    const p = ctx.pipeline;
    if (p.dedup.index !== 'rocksdb') return;
    const table = `winnow_${p.name}_seen_kv`;
    const ttl = 2 * Math.ceil(p.dedup.windowMs / 1000);
    const sql = `CREATE TABLE IF NOT EXISTS ${qualified(p.sink.database, table)}
(
    \`h\` UInt128,
    \`__t\` DateTime64(3, 'UTC'),
    \`__s\` UInt64
)
ENGINE = EmbeddedRocksDB(${ttl})
PRIMARY KEY \`h\``;
    await ctx.run([statement(`seen-key index ${table}`, sql)]);
  },
  async down(ctx) {
    const p = ctx.pipeline;
    const table = `winnow_${p.name}_seen_kv`;
    await ctx.run([statement(`drop table ${table}`, `DROP TABLE IF EXISTS ${qualified(p.sink.database, table)} SYNC`)]);
  },
};
