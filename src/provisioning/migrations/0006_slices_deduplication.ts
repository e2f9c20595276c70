import { qualified } from '../../clickhouse/sql.ts';
import type { WinnowMigration } from './types.ts';

/**
 * Checkpoint rows are written with an insert deduplication token per (slice,
 * status), so the slices table needs a deduplication window: without one the
 * token does nothing on a non-replicated MergeTree. The DDL is written out
 * here, not taken from the live builders, so this migration never changes.
 */
export const migration: WinnowMigration = {
  name: '0006_slices_deduplication',
  async up(ctx) {
    const sql = `ALTER TABLE ${qualified(ctx.pipeline.sink.database, 'winnow_slices')} MODIFY SETTING non_replicated_deduplication_window = 10000`;
    await ctx.run([{ title: 'slices table winnow_slices: insert deduplication window', sql, display: sql }]);
  },
  async down() {
    // The table is shared by every pipeline of the database, and the window is harmless to
    // code that does not use it: nothing to undo for one pipeline.
  },
};
