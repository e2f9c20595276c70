import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { slicesTableSql, SLICES_TABLE } from '../objects.ts';
import type { WinnowMigration } from './types.ts';

/** The slices table: checkpoints and per-slice statistics of every pipeline in the database. */
export const migration: WinnowMigration = {
  name: '0001_slices',
  async up(ctx) {
    const sql = slicesTableSql(ctx.pipeline.sink.database);
    await ctx.run([{ title: `slices table ${SLICES_TABLE}`, sql, display: sql }]);
  },
  async down(ctx) {
    // Other pipelines of the database may still use it; drop only this pipeline's rows.
    const sql = `DELETE FROM ${qualified(ctx.pipeline.sink.database, SLICES_TABLE)} WHERE pipeline = ${quoteString(ctx.pipeline.name)}`;
    await ctx.run([{ title: `forget slices of ${ctx.pipeline.name}`, sql, display: sql }]);
  },
};
