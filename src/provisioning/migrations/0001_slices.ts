import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/**
 * The slices table: checkpoints and per-slice statistics of every pipeline in
 * the database. Frozen as first shipped (ad4a3ad); 0006 and 0007 change it.
 */
export const migration: WinnowMigration = {
  name: '0001_slices',
  async up(ctx) {
    const sql = `CREATE TABLE IF NOT EXISTS ${qualified(ctx.pipeline.sink.database, 'winnow_slices')}
(
    \`pipeline\` LowCardinality(String),
    \`seq\` UInt64,
    \`slice_id\` String,
    \`status\` Enum8('planned' = 1, 'committed' = 2),
    \`ranges\` Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64)),
    \`next_offsets\` Array(Tuple(topic String, partition UInt32, offset UInt64)),
    \`rows_in\` UInt64,
    \`inserted\` UInt64,
    \`duplicates\` UInt64,
    \`planned_at\` DateTime64(3, 'UTC'),
    \`committed_at\` Nullable(DateTime64(3, 'UTC')),
    \`duration_ms\` UInt32
)
ENGINE = MergeTree
ORDER BY (\`pipeline\`, \`seq\`, \`status\`)`;
    await ctx.run([statement('slices table winnow_slices', sql)]);
  },
  async down(ctx) {
    // Other pipelines of the database may still use it; drop only this pipeline's rows.
    const sql = `DELETE FROM ${qualified(ctx.pipeline.sink.database, 'winnow_slices')} WHERE pipeline = ${quoteString(ctx.pipeline.name)}`;
    await ctx.run([statement(`forget slices of ${ctx.pipeline.name}`, sql)]);
  },
};
