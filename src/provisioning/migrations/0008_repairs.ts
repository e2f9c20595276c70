import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { objectNames, REPAIRS_TABLE, repairStatements } from '../objects.ts';
import type { WinnowMigration } from './types.ts';

/**
 * The checker repairs a slice written twice: a log of its repairs, step by
 * step, and the write-ahead copies of the doubled rows it saves first.
 */
export const migration: WinnowMigration = {
  name: '0008_repairs',
  async up(ctx) {
    await ctx.run(repairStatements(ctx.pipeline));
  },
  async down(ctx) {
    const n = objectNames(ctx.pipeline);
    const stmts = [
      `DROP TABLE IF EXISTS ${qualified(n.database, n.repairSeen)} SYNC`,
      `DROP TABLE IF EXISTS ${qualified(n.database, n.repairFinal)} SYNC`,
      `DELETE FROM ${qualified(n.database, REPAIRS_TABLE)} WHERE pipeline = ${quoteString(ctx.pipeline.name)}`,
    ];
    await ctx.run(stmts.map((sql) => ({ title: 'forget the repairs', sql, display: sql })));
  },
};
