import { ident, qualified, quoteString } from '../../clickhouse/sql.ts';
import type { PipelineConfig } from '../../config/schema.ts';
import { statement, type WinnowMigration } from './types.ts';

/** `    \`name\` Type` lines of the configured columns, or of those named in `only` (frozen copy). */
function columnList(p: PipelineConfig, only?: string[]): string {
  const cols = only ? p.columns.filter((c) => only.includes(c.name)) : p.columns;
  return cols.map((c) => `    ${ident(c.name)} ${c.type}`).join(',\n');
}

/**
 * The checker repairs a slice written twice: a log of its repairs, step by
 * step (shared by the pipelines of a database), and per pipeline the
 * write-ahead copies of the doubled final rows and seen keys it saves first.
 * Frozen as shipped (430c86b).
 */
export const migration: WinnowMigration = {
  name: '0008_repairs',
  async up(ctx) {
    const p = ctx.pipeline;
    const q = (t: string): string => qualified(p.sink.database, t);
    const key = p.dedup.key.map(ident).join(', ');
    const repairFinal = `winnow_${p.name}_repair_final`;
    const repairSeen = `winnow_${p.name}_repair_seen`;
    const log = `CREATE TABLE IF NOT EXISTS ${q('winnow_repairs')}
(
    \`pipeline\` LowCardinality(String),
    \`repair_id\` String,
    \`step\` Enum8('saved' = 1, 'deleting' = 2, 'done' = 3),
    \`attempt\` UInt32,
    \`at\` DateTime64(3, 'UTC') DEFAULT now64(3),
    \`keys\` UInt64,
    \`final_removed\` UInt64,
    \`seen_removed\` UInt64,
    \`restored\` UInt64,
    \`final_coords\` Array(Tuple(String, UInt64)),
    \`seen_coords\` Array(Tuple(String, UInt64)),
    \`note\` String
)
ENGINE = MergeTree
ORDER BY (\`pipeline\`, \`repair_id\`, \`step\`, \`attempt\`)
TTL toDateTime(\`at\`) + INTERVAL 90 DAY`;
    const savedFinal = `CREATE TABLE IF NOT EXISTS ${q(repairFinal)}
(
    \`__repair\` String,
${columnList(p)},
    \`__found\` UInt32,
    \`__copies\` UInt32,
    \`__saved_at\` DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (\`__repair\`, ${key})
TTL \`__saved_at\` + INTERVAL 90 DAY`;
    const savedSeen = `CREATE TABLE IF NOT EXISTS ${q(repairSeen)}
(
    \`__repair\` String,
${columnList(p, p.dedup.key)},
    \`__t\` DateTime64(3, 'UTC'),
    \`__slice\` String,
    \`__at\` DateTime,
    \`__found\` UInt32,
    \`__copies\` UInt32,
    \`__saved_at\` DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (\`__repair\`, ${key})
TTL \`__saved_at\` + INTERVAL 90 DAY`;
    await ctx.run([
      statement('repairs log winnow_repairs', log),
      statement(`saved final rows ${repairFinal}`, savedFinal),
      statement(`saved seen keys ${repairSeen}`, savedSeen),
    ]);
  },
  async down(ctx) {
    const p = ctx.pipeline;
    const q = (t: string): string => qualified(p.sink.database, t);
    const stmts = [
      `DROP TABLE IF EXISTS ${q(`winnow_${p.name}_repair_seen`)} SYNC`,
      `DROP TABLE IF EXISTS ${q(`winnow_${p.name}_repair_final`)} SYNC`,
      `DELETE FROM ${q('winnow_repairs')} WHERE pipeline = ${quoteString(p.name)}`,
    ];
    await ctx.run(stmts.map((sql) => statement('forget the repairs', sql)));
  },
};
