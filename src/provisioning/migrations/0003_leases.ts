import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { renderDdl } from '../ddl.ts';
import { LEASES_TABLE } from '../../slicing/lease.ts';
import type { WinnowMigration } from './types.ts';

/** Leases: which daemon may process a pipeline, one claim per time epoch. */
export const migration: WinnowMigration = {
  name: '0003_leases',
  async up(ctx) {
    const sql = renderDdl('create_leases', { table: qualified(ctx.pipeline.sink.database, LEASES_TABLE) });
    await ctx.run([{ title: `leases table ${LEASES_TABLE}`, sql, display: sql }]);
  },
  async down(ctx) {
    const sql = `DELETE FROM ${qualified(ctx.pipeline.sink.database, LEASES_TABLE)} WHERE pipeline = ${quoteString(ctx.pipeline.name)}`;
    await ctx.run([{ title: `forget leases of ${ctx.pipeline.name}`, sql, display: sql }]);
  },
};
