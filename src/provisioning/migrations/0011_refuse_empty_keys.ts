import { ident, qualified, quoteString } from '../../clickhouse/sql.ts';
import type { PipelineConfig } from '../../config/schema.ts';
import { WinnowError } from '../../errors.ts';
import { validatedSelect } from './0002_pipeline_objects.render.ts';
import { statement, type MigrationStatement, type WinnowMigration } from './types.ts';

/**
 * An empty key is refused like a null one: a message whose String or
 * FixedString key column holds '' becomes a dead letter (`<column>: empty key
 * at $.path`) instead of a row whose key every such message shares. Only the
 * parsing view changes: it is dropped (consumption stops; the Kafka engine
 * commits offsets only after its views wrote a block, so nothing is lost) and
 * created again with the new check, the last statement, as 0009 does.
 * Down drops the parsing view and, like 0009's, does not build the old one
 * again: that would start consuming while down takes the pipeline apart (and
 * fails where the queue is gone already); 0011's up builds it again. Frozen:
 * never edit, a later change is a new migration.
 */

/** 0002's (and 0009's) last alternative of the `__error` multiIf: the new checks go right before it. */
const NO_ERROR = "\n            ''\n        ) AS `__error`";

/** String and FixedString under LowCardinality and Nullable: the key types an empty string is a value of. */
function holdsEmptyString(type: string): boolean {
  let t = type.trim();
  for (;;) {
    const inner = /^(?:LowCardinality|Nullable)\((.*)\)$/s.exec(t);
    if (!inner?.[1]) break;
    t = inner[1].trim();
  }
  return /^(String|FixedString\(.*\))$/s.test(t);
}

/** The parsing view's SELECT of 0011: 0002's, then one check per key column that can be empty. */
export function validatedSelect0011(p: PipelineConfig, queue: string): string {
  const checks = p.dedup.key.flatMap((name) => {
    const col = p.columns.find((c) => c.name === name);
    if (!col || !holdsEmptyString(col.type)) return [];
    const where = col.source.kind === 'expr' ? `expression ${col.source.expr}` : `$.${col.source.path.join('.')}`;
    return [`\n            ${ident(`__v_${name}`)} = '', ${quoteString(`${name}: empty key at ${where}`)},`];
  });
  const select = validatedSelect(p, queue);
  if (!select.includes(NO_ERROR)) {
    throw new WinnowError('INTERNAL', '0011: the parsing view of 0002 has no final alternative');
  }
  // A function, so that `$&` or `$'` in a configured expression is not read as a replacement pattern.
  return select.replace(NO_ERROR, () => checks.join('') + NO_ERROR);
}

function dropParsingView(p: PipelineConfig): MigrationStatement {
  const view = `winnow_${p.name}_parsed_mv`;
  return statement(
    `drop view ${view} (consumption stops)`,
    `DROP VIEW IF EXISTS ${qualified(p.sink.database, view)} SYNC`,
  );
}

export const migration: WinnowMigration = {
  name: '0011_refuse_empty_keys',
  async up(ctx) {
    const p = ctx.pipeline;
    const q = (t: string): string => qualified(p.sink.database, t);
    const view = `winnow_${p.name}_parsed_mv`;
    await ctx.run([
      dropParsingView(p),
      statement(
        `parsing view ${view}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(view)} TO ${q(`winnow_${p.name}_parsed`)}\n` +
          `AS ${validatedSelect0011(p, q(`winnow_${p.name}_queue`))}`,
      ),
    ]);
  },
  async down(ctx) {
    await ctx.run([dropParsingView(ctx.pipeline)]);
  },
};
