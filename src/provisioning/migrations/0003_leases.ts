import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/** Leases: which daemon may process a pipeline, one claim per time epoch. Frozen as first shipped (66432d7). */
export const migration: WinnowMigration = {
  name: '0003_leases',
  async up(ctx) {
    const sql = `CREATE TABLE IF NOT EXISTS ${qualified(ctx.pipeline.sink.database, 'winnow_leases')}
(
    \`pipeline\` LowCardinality(String),
    \`epoch\` UInt64,
    \`owner\` String,
    \`claimed_at\` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (\`pipeline\`, \`epoch\`)
TTL toDateTime(\`claimed_at\`) + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 10000`;
    await ctx.run([statement('leases table winnow_leases', sql)]);
  },
  async down(ctx) {
    const sql = `DELETE FROM ${qualified(ctx.pipeline.sink.database, 'winnow_leases')} WHERE pipeline = ${quoteString(ctx.pipeline.name)}`;
    await ctx.run([statement(`forget leases of ${ctx.pipeline.name}`, sql)]);
  },
};
