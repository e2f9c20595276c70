import { qualified, renderSql } from '../src/clickhouse/sql.ts';
import { keptCountsStatements, objectNames, seenUpgradeStatements } from '../src/pipeline/objects.ts';
import type { WinnowMigration } from './types.ts';

/**
 * Seen keys get a key hash (the slice insert's lookup reads 8 bytes a key) and
 * a write time (expiry from the later of event and write time); slices count
 * their kept rows into a small table as they insert them. A pipeline created
 * by this version's 0002 has all of it already: every statement is a no-op then.
 */
export const migration: WinnowMigration = {
  name: '0005_seen_hash_and_kept_counts',
  async up(ctx) {
    await ctx.run([...seenUpgradeStatements(ctx.pipeline), ...keptCountsStatements(ctx.pipeline)]);
  },
  async down(ctx) {
    const n = objectNames(ctx.pipeline);
    const view = renderSql('drop_view', { view: qualified(n.database, n.keptToCountsMv) });
    const table = renderSql('drop_table', { table: qualified(n.database, n.keptCounts) });
    await ctx.run([
      { title: `drop view ${n.keptToCountsMv}`, sql: view, display: view },
      { title: `drop table ${n.keptCounts}`, sql: table, display: table },
    ]);
  },
};
