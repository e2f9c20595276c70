import { qualified } from '../../clickhouse/sql.ts';
import type { WinnowMigration } from './types.ts';

/**
 * Slices record the messages the final table refused (dead-lettered), and a
 * slice that had to be split says so ('split'). Both are metadata changes of
 * the shared slices table; the DDL is written out here so this migration never changes.
 */
export const migration: WinnowMigration = {
  name: '0007_slice_refusals',
  async up(ctx) {
    const t = qualified(ctx.pipeline.sink.database, 'winnow_slices');
    const stmts = [
      `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS \`rejected\` UInt64 DEFAULT 0 AFTER \`duplicates\``,
      `ALTER TABLE ${t} MODIFY COLUMN \`status\` Enum8('planned' = 1, 'committed' = 2, 'split' = 3)`,
    ];
    await ctx.run(
      stmts.map((sql) => ({ title: 'slices table winnow_slices: refused rows and split slices', sql, display: sql })),
    );
  },
  async down() {
    // Shared by every pipeline of the database, and the old code ignores both: nothing to undo for one pipeline.
  },
};
