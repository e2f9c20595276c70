import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/** Replays (re-processed ranges with their counts) and consistency-check reports. Frozen as first shipped (aa6c8db). */
export const migration: WinnowMigration = {
  name: '0004_replays_and_checks',
  async up(ctx) {
    const db = ctx.pipeline.sink.database;
    const replays = `CREATE TABLE IF NOT EXISTS ${qualified(db, 'winnow_replays')}
(
    \`pipeline\` LowCardinality(String),
    \`replay_id\` String,
    \`chunk\` UInt32,
    \`ranges\` Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64)),
    \`rows_in\` UInt64,
    \`inserted\` UInt64,
    \`duplicates\` UInt64,
    \`reason\` String,
    \`at\` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (\`pipeline\`, \`at\`)`;
    const checks = `CREATE TABLE IF NOT EXISTS ${qualified(db, 'winnow_checks')}
(
    \`pipeline\` LowCardinality(String),
    \`checked_at\` DateTime64(3, 'UTC'),
    \`ok\` UInt8,
    \`report\` String
)
ENGINE = MergeTree
ORDER BY (\`pipeline\`, \`checked_at\`)
TTL toDateTime(\`checked_at\`) + INTERVAL 30 DAY`;
    await ctx.run([
      statement('replays table winnow_replays', replays),
      statement('checks table winnow_checks', checks),
    ]);
  },
  async down(ctx) {
    const db = ctx.pipeline.sink.database;
    const p = quoteString(ctx.pipeline.name);
    await ctx.run(
      ['winnow_replays', 'winnow_checks'].map((t) =>
        statement(`forget ${t} rows of ${ctx.pipeline.name}`, `DELETE FROM ${qualified(db, t)} WHERE pipeline = ${p}`),
      ),
    );
  },
};
