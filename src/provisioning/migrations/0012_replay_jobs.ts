import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { statement, type WinnowMigration } from './types.ts';

/**
 * Replays while the daemon runs: a request is a job row in winnow_replay_jobs
 * (shared by the pipelines of a database), which the lease holder claims, runs
 * between slices and updates with its state and progress. Each change is a new
 * row (rev + 1) written with an insert deduplication token, so two runners
 * racing for the same revision leave one row: the table needs a deduplication
 * window. So does winnow_replays: a resumed job records a chunk again under the
 * same token, and the checker's counts must see it once.
 */
export const migration: WinnowMigration = {
  name: '0012_replay_jobs',
  async up(ctx) {
    const db = ctx.pipeline.sink.database;
    const jobs = `CREATE TABLE IF NOT EXISTS ${qualified(db, 'winnow_replay_jobs')}
(
    \`pipeline\` LowCardinality(String),
    \`job_id\` String,
    \`rev\` UInt32,
    \`kind\` Enum8('replay' = 1, 'deadletters' = 2),
    \`state\` Enum8('queued' = 1, 'running' = 2, 'done' = 3, 'failed' = 4),
    \`request\` String,
    \`requested_by\` String,
    \`requested_at\` DateTime64(3, 'UTC'),
    \`holder\` String,
    \`attempt\` UInt32,
    \`plan\` String,
    \`chunks_done\` UInt32,
    \`chunks_total\` UInt32,
    \`offsets_done\` UInt64,
    \`offsets_total\` UInt64,
    \`rows_in\` UInt64,
    \`inserted\` UInt64,
    \`result\` String,
    \`error\` String,
    \`updated_at\` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (\`pipeline\`, \`job_id\`, \`rev\`)
TTL toDateTime(\`updated_at\`) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000`;
    const replays = qualified(db, 'winnow_replays');
    const replaysWindow = `ALTER TABLE ${replays} MODIFY SETTING non_replicated_deduplication_window = 10000`;
    await ctx.run([
      statement('replay jobs table winnow_replay_jobs', jobs),
      statement('replays table winnow_replays: insert deduplication window', replaysWindow),
    ]);
  },
  async down(ctx) {
    // Shared by the pipelines of the database: forget this pipeline's jobs only; the window is harmless.
    const jobs = qualified(ctx.pipeline.sink.database, 'winnow_replay_jobs');
    const sql = `DELETE FROM ${jobs} WHERE pipeline = ${quoteString(ctx.pipeline.name)}`;
    await ctx.run([statement(`forget replay jobs of ${ctx.pipeline.name}`, sql)]);
  },
};
