import { ident, qualified } from '../../clickhouse/sql.ts';
import type { PipelineConfig } from '../../config/schema.ts';
import { statement, type WinnowMigration } from './types.ts';

/** Seen keys live twice the window (frozen copy of the rule as of 13f841f). */
function seenTtlSeconds(p: PipelineConfig): number {
  return 2 * Math.ceil(p.dedup.windowMs / 1000);
}

/**
 * Seen keys get a key hash (the slice insert's lookup reads 8 bytes a key) and
 * a write time (expiry from the later of event and write time). Existing parts
 * compute both columns when read; the new TTL applies as parts merge (no
 * rewrite now). Frozen as shipped under this name (13f841f); a database that
 * ran it as 0005_seen_hash_and_kept_counts counts as having run it (the
 * migrator's alias table), and 0009 drops the kept counts that name also made.
 */
export const migration: WinnowMigration = {
  name: '0005_seen_hash_and_write_time',
  async up(ctx) {
    const p = ctx.pipeline;
    const name = `winnow_${p.name}_seen`;
    const seen = qualified(p.sink.database, name);
    const key = p.dedup.key.map(ident).join(', ');
    const expiry = `greatest(toDateTime(\`__t\`), \`__at\`) + INTERVAL ${seenTtlSeconds(p)} SECOND`;
    await ctx.run([
      statement(
        `seen keys ${name}: key hash`,
        `ALTER TABLE ${seen} ADD COLUMN IF NOT EXISTS \`__h\` UInt64 MATERIALIZED sipHash64(${key})`,
      ),
      statement(
        `seen keys ${name}: write time`,
        `ALTER TABLE ${seen} ADD COLUMN IF NOT EXISTS \`__at\` DateTime DEFAULT now()`,
      ),
      statement(
        `seen keys ${name}: expiry`,
        `ALTER TABLE ${seen} MODIFY TTL ${expiry} SETTINGS materialize_ttl_after_modify = 0`,
      ),
    ]);
  },
  async down(ctx) {
    const p = ctx.pipeline;
    const name = `winnow_${p.name}_seen`;
    const seen = qualified(p.sink.database, name);
    const stmts = [
      `ALTER TABLE ${seen} MODIFY TTL toDateTime(\`__t\`) + INTERVAL ${seenTtlSeconds(p)} SECOND SETTINGS materialize_ttl_after_modify = 0`,
      `ALTER TABLE ${seen} DROP COLUMN IF EXISTS \`__at\`, DROP COLUMN IF EXISTS \`__h\``,
    ];
    await ctx.run(stmts.map((sql) => statement(`seen keys ${name}: back to expiry from t`, sql)));
  },
};
