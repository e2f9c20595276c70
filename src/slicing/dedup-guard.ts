/**
 * Before a daemon writes anything, it proves that the writes that rely on an
 * insert deduplication token can deduplicate on this server: the settings
 * exist and may be set, and every table such a write lands in keeps block
 * ids (a MergeTree with a deduplication window). Otherwise a resumed slice
 * would be written twice without a word from ClickHouse; the daemon refuses
 * to start instead, with one line that names the cause and the fix.
 */
import type { Db } from '../clickhouse/client.ts';
import { ClickHouseFailure } from '../clickhouse/client.ts';
import { qualified } from '../clickhouse/sql.ts';
import { TOKEN_INSERT_SELECT_SETTINGS } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { LEASES_TABLE, objectNames, SLICES_TABLE } from '../provisioning/objects.ts';

const REQUIRED_SETTINGS = [
  'insert_deduplicate',
  'deduplicate_insert',
  'deduplicate_insert_select',
  'deduplicate_blocks_in_dependent_materialized_views',
];

interface TableRow {
  name: string;
  engine: string;
  create_table_query: string;
}

/** The deduplication window a table's DDL sets, else the server's default for its engine kind. */
function windowOf(t: TableRow, defaults: Map<string, number>): { setting: string; value: number } {
  const setting = t.engine.startsWith('Replicated')
    ? 'replicated_deduplication_window'
    : 'non_replicated_deduplication_window';
  const m = new RegExp(`\\b${setting}\\s*=\\s*(\\d+)`).exec(t.create_table_query);
  return { setting, value: m?.[1] !== undefined ? Number(m[1]) : (defaults.get(setting) ?? 0) };
}

function unsafe(p: PipelineConfig, what: string, hint: string): WinnowError {
  return new WinnowError('DEDUP_UNSAFE', `pipeline ${p.name}: ${what}, so a resumed slice could be written twice`, {
    hint,
  });
}

/**
 * Throws DEDUP_UNSAFE when token deduplication cannot work for this pipeline.
 * Tables not created yet are skipped (readiness reports them as not migrated).
 */
export async function assertTokenDeduplication(db: Db, p: PipelineConfig): Promise<void> {
  const present = await db.rows<{ name: string }>(
    'SELECT name FROM system.settings WHERE name IN {names:Array(String)}',
    { names: REQUIRED_SETTINGS },
  );
  const missing = REQUIRED_SETTINGS.filter((s) => !present.some((r) => r.name === s));
  if (missing.length > 0) {
    const [v] = await db.rows<{ v: string }>('SELECT version() AS v');
    throw unsafe(
      p,
      `ClickHouse ${v?.v ?? '?'} has no setting ${missing.join(', ')}`,
      'winnow needs ClickHouse 26.2 or later',
    );
  }
  try {
    await db.rows('SELECT 1', {}, TOKEN_INSERT_SELECT_SETTINGS);
  } catch (err) {
    if (!(err instanceof ClickHouseFailure) || err.chCode === undefined) throw err;
    throw unsafe(
      p,
      `ClickHouse refuses winnow's insert deduplication settings (${err.message})`,
      `let sink.user change ${REQUIRED_SETTINGS.join(', ')} (settings profile constraints)`,
    );
  }

  const n = objectNames(p);
  const tables = [n.final, n.seen, LEASES_TABLE, SLICES_TABLE];
  const [rows, defaults] = await Promise.all([
    db.rows<TableRow>(
      'SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String} AND name IN {names:Array(String)}',
      { db: n.database, names: tables },
    ),
    db.rows<{ name: string; value: string }>(
      "SELECT name, value FROM system.merge_tree_settings WHERE name IN ('non_replicated_deduplication_window', 'replicated_deduplication_window')",
    ),
  ]);
  const byName = new Map(defaults.map((d) => [d.name, Number(d.value)]));
  for (const t of rows) {
    const target = qualified(n.database, t.name);
    const ours = t.name !== n.final || p.sink.mode === 'create';
    if (!t.engine.includes('MergeTree')) {
      throw unsafe(
        p,
        `${target} (engine ${t.engine}) does not deduplicate inserts`,
        ours ? 'recreate it with winnow migrate' : 'adopt a MergeTree-family table',
      );
    }
    const w = windowOf(t, byName);
    if (w.value <= 0) {
      throw unsafe(
        p,
        `insert deduplication is off for ${target} (${w.setting} = ${w.value})`,
        t.name === SLICES_TABLE ? 'run winnow migrate up' : `ALTER TABLE ${target} MODIFY SETTING ${w.setting} = 10000`,
      );
    }
  }
}
