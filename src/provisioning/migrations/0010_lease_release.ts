import { ident, qualified, quoteString } from '../../clickhouse/sql.ts';
import type { WinnowMigration } from './types.ts';

/** The shared leases table, named here so this migration never changes. */
const LEASES_TABLE = 'winnow_leases';

/**
 * Lease protocol 2 (src/slicing/lease.ts): claims per half-epoch term and
 * generation, and release rows, so a daemon that stops or cannot process hands
 * the pipeline over at once. The new columns are harmless to other pipelines
 * of the shared table (they default to what older daemons wrote: protocol 1,
 * generation 0, a claim). The constraint is this pipeline's own: it refuses
 * claims of older daemons for it, which would not see releases or terms, so
 * two writers can never come of a daemon that was not upgraded. The DDL is
 * written out here so this migration never changes.
 */
/** The pipeline's own constraint on the shared leases table. */
const constraint = (pipeline: string): string => ident(`lease_protocol_${pipeline}`);

export const migration: WinnowMigration = {
  name: '0010_lease_release',
  async up(ctx) {
    const t = qualified(ctx.pipeline.sink.database, LEASES_TABLE);
    const stmts = [
      {
        title: `leases table ${LEASES_TABLE}: generations, releases and the protocol of each claim`,
        sql:
          `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS \`gen\` UInt32 DEFAULT 0, ` +
          `ADD COLUMN IF NOT EXISTS \`kind\` Enum8('claim' = 1, 'release' = 2) DEFAULT 'claim', ` +
          'ADD COLUMN IF NOT EXISTS `protocol` UInt8 DEFAULT 1, ' +
          "ADD COLUMN IF NOT EXISTS `note` String DEFAULT ''",
      },
      {
        title: `leases of ${ctx.pipeline.name}: refuse claims of daemons older than lease protocol 2`,
        sql:
          `ALTER TABLE ${t} ADD CONSTRAINT IF NOT EXISTS ${constraint(ctx.pipeline.name)} ` +
          `CHECK protocol >= 2 OR pipeline != ${quoteString(ctx.pipeline.name)}`,
      },
    ];
    await ctx.run(stmts.map((s) => ({ ...s, display: s.sql })));
  },
  async down(ctx) {
    // The columns are shared by every pipeline of the database and harmless to older code: only the constraint goes.
    const t = qualified(ctx.pipeline.sink.database, LEASES_TABLE);
    const sql = `ALTER TABLE ${t} DROP CONSTRAINT IF EXISTS ${constraint(ctx.pipeline.name)}`;
    await ctx.run([
      { title: `leases of ${ctx.pipeline.name}: accept claims of older daemons again`, sql, display: sql },
    ]);
  },
};
