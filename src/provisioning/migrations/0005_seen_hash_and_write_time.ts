import { qualified } from '../../clickhouse/sql.ts';
import { objectNames, seenTtlSeconds, seenUpgradeStatements } from '../objects.ts';
import type { WinnowMigration } from './types.ts';

/**
 * Seen keys get a key hash (the slice insert's lookup reads 8 bytes a key) and
 * a write time (expiry from the later of event and write time). A pipeline
 * created by this version's 0002 has both already: every statement is a no-op then.
 */
export const migration: WinnowMigration = {
  name: '0005_seen_hash_and_write_time',
  async up(ctx) {
    await ctx.run(seenUpgradeStatements(ctx.pipeline));
  },
  async down(ctx) {
    const n = objectNames(ctx.pipeline);
    const seen = qualified(n.database, n.seen);
    const stmts = [
      `ALTER TABLE ${seen} MODIFY TTL toDateTime(\`__t\`) + INTERVAL ${seenTtlSeconds(ctx.pipeline)} SECOND SETTINGS materialize_ttl_after_modify = 0`,
      `ALTER TABLE ${seen} DROP COLUMN IF EXISTS \`__at\`, DROP COLUMN IF EXISTS \`__h\``,
    ];
    await ctx.run(stmts.map((sql) => ({ title: `seen keys ${n.seen}: back to expiry from t`, sql, display: sql })));
  },
};
