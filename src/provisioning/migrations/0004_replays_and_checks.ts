import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { renderDdl } from '../ddl.ts';
import { CHECKS_TABLE, REPLAYS_TABLE } from '../objects.ts';
import type { WinnowMigration } from './types.ts';

/** Replays (re-processed ranges with their counts) and consistency-check reports. */
export const migration: WinnowMigration = {
  name: '0004_replays_and_checks',
  async up(ctx) {
    const db = ctx.pipeline.sink.database;
    const replays = renderDdl('create_replays', { table: qualified(db, REPLAYS_TABLE) });
    const checks = renderDdl('create_checks', { table: qualified(db, CHECKS_TABLE) });
    await ctx.run([
      { title: `replays table ${REPLAYS_TABLE}`, sql: replays, display: replays },
      { title: `checks table ${CHECKS_TABLE}`, sql: checks, display: checks },
    ]);
  },
  async down(ctx) {
    const db = ctx.pipeline.sink.database;
    const p = quoteString(ctx.pipeline.name);
    const stmts = [REPLAYS_TABLE, CHECKS_TABLE].map((t) => {
      const sql = `DELETE FROM ${qualified(db, t)} WHERE pipeline = ${p}`;
      return { title: `forget ${t} rows of ${ctx.pipeline.name}`, sql, display: sql };
    });
    await ctx.run(stmts);
  },
};
