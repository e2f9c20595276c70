/**
 * `winnow migrate`: umzug over the numbered migrations in migrations/, one
 * history per pipeline kept in ClickHouse (winnow_migrations of the sink
 * database). Every statement is idempotent (IF NOT EXISTS), so two hosts
 * migrating at once both succeed and build the same objects.
 */
import { Umzug, type UmzugStorage } from 'umzug';
import { migrations, type MigrationContext } from './migrations/index.ts';
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified, quoteString } from '../clickhouse/sql.ts';
import { renderDdl } from './ddl.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { MIGRATIONS_TABLE, objectNames, type Statement } from './objects.ts';

export interface MigrateOptions {
  dryRun: boolean;
  kafkaPassword: string | undefined;
  dropFinal?: boolean;
  /** progress lines and, in dry-run, the SQL */
  print: (line: string) => void;
  /** for initialOffset latest: commit the log end for a new consumer group before the queue exists */
  seedConsumerGroup?: () => Promise<number>;
  /** up: stop after this migration (tests build what an older winnow built) */
  to?: string;
}

/**
 * Names a shipped migration once had, by the name it has now. A history row
 * under an old name counts as the migration having run; rows are written
 * under the current name. A shipped migration is never renamed again.
 */
export const MIGRATION_ALIASES: Readonly<Record<string, readonly string[]>> = {
  // Renamed in 13f841f when its kept counts were removed (0009 drops them where they exist).
  '0005_seen_hash_and_write_time': ['0005_seen_hash_and_kept_counts'],
};

const CURRENT_NAME = new Map(Object.entries(MIGRATION_ALIASES).flatMap(([name, old]) => old.map((o) => [o, name] as const)));

/** The name a history row stands for today. */
export function currentMigrationName(name: string): string {
  return CURRENT_NAME.get(name) ?? name;
}

export interface MigrationStatus {
  name: string;
  executed: boolean;
}

class ClickHouseStorage implements UmzugStorage {
  constructor(
    private readonly db: Db,
    private readonly table: string,
    private readonly dryRun: boolean,
  ) {}
  async ensure(): Promise<boolean> {
    if (this.dryRun) return this.exists();
    await this.db.command(renderDdl('create_migrations', { table: this.table }));
    return true;
  }
  private async exists(): Promise<boolean> {
    const [db, t] = this.table.split('.').map((s) => s.replaceAll('`', ''));
    const rows = await this.db.rows<{ n: string }>(
      'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}',
      { db, t },
    );
    return Number(rows[0]?.n ?? 0) > 0;
  }
  async logMigration({ name }: { name: string }): Promise<void> {
    if (this.dryRun) return;
    await this.db.command(`INSERT INTO ${this.table} (name) VALUES ({name:String})`, { name });
  }
  async unlogMigration({ name }: { name: string }): Promise<void> {
    if (this.dryRun) return;
    const names = [name, ...(MIGRATION_ALIASES[name] ?? [])];
    await this.db.command(`DELETE FROM ${this.table} WHERE name IN {names:Array(String)}`, { names }, { mutations_sync: '2' });
  }
  async executed(): Promise<string[]> {
    if (!(await this.exists())) return [];
    const rows = await this.db.rows<{ name: string }>(`SELECT DISTINCT name FROM ${this.table} FINAL ORDER BY name`);
    return [...new Set(rows.map((r) => currentMigrationName(r.name)))].sort();
  }
}

interface Column {
  name: string;
  type: string;
}

async function finalColumns(db: Db, p: PipelineConfig): Promise<Column[] | undefined> {
  const n = objectNames(p);
  const rows = await db.rows<Column & { t: string }>(
    `SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position`,
    { db: n.database, t: n.final },
  );
  if (rows.length > 0) return rows.map((r) => ({ name: r.name, type: r.type }));
  const exists = await db.rows<{ n: string }>('SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}', {
    db: n.database,
    t: n.final,
  });
  return Number(exists[0]?.n ?? 0) > 0 ? [] : undefined;
}

/** ClickHouse prints normalised types; compare them the same way on both sides. */
async function normaliseTypes(db: Db, types: string[]): Promise<string[]> {
  if (types.length === 0) return [];
  const sql = `SELECT ${types.map((t, i) => `toTypeName(CAST(defaultValueOfTypeName(${quoteString(t)}), ${quoteString(t)})) AS t${i}`).join(', ')}`;
  const rows = await db.rows<Record<string, string>>(sql);
  return types.map((t, i) => rows[0]?.[`t${i}`] ?? t);
}

/** Differences between the existing final table and the configured columns; empty when they match. */
export async function finalTableDiff(db: Db, p: PipelineConfig, existing: Column[]): Promise<string[]> {
  const wanted = await normaliseTypes(db, p.columns.map((c) => c.type));
  const have = new Map(existing.map((c) => [c.name, c.type]));
  const diff: string[] = [];
  p.columns.forEach((c, i) => {
    const t = have.get(c.name);
    const w = wanted[i] ?? c.type;
    if (t === undefined) diff.push(`- missing column ${c.name} ${w}`);
    else if (t !== w) diff.push(`~ column ${c.name}: table has ${t}, configuration says ${w}`);
  });
  for (const c of existing) {
    if (!p.columns.some((x) => x.name === c.name)) diff.push(`+ extra column ${c.name} ${c.type} (not in the configuration; it will get its default value)`);
  }
  return diff;
}

export class Migrator {
  constructor(
    private readonly db: Db,
    private readonly pipeline: PipelineConfig,
  ) {}

  private umzug(ctx: MigrationContext, storage: ClickHouseStorage): Umzug<MigrationContext> {
    return new Umzug<MigrationContext>({
      migrations: migrations.map((m) => ({ name: m.name, up: ({ context }) => m.up(context), down: ({ context }) => m.down(context) })),
      context: ctx,
      storage,
      logger: undefined,
    });
  }

  private storage(dryRun: boolean): ClickHouseStorage {
    return new ClickHouseStorage(this.db, qualified(this.pipeline.sink.database, `${MIGRATIONS_TABLE}_${this.pipeline.name}`), dryRun);
  }

  private async assertNotAhead(storage: ClickHouseStorage): Promise<void> {
    const known = new Set(migrations.map((m) => m.name));
    const unknown = (await storage.executed()).filter((n) => !known.has(n));
    if (unknown.length > 0) {
      throw new WinnowError('MIGRATION', `pipeline ${this.pipeline.name}: the database has run migrations this winnow does not know (${unknown.join(', ')})`, {
        hint: 'it was provisioned by a newer winnow; upgrade winnow before running it against this database',
      });
    }
  }

  private context(opts: MigrateOptions, finalExists: boolean): MigrationContext {
    return {
      db: this.db,
      pipeline: this.pipeline,
      kafkaPassword: opts.kafkaPassword,
      finalExists,
      dropFinal: opts.dropFinal ?? false,
      run: async (statements: Statement[]) => {
        for (const s of statements) {
          if (opts.dryRun) {
            opts.print(`-- ${s.title}\n${s.display};\n`);
            continue;
          }
          const t0 = Date.now();
          await this.db.command(s.sql);
          opts.print(`  ${s.title} (${Date.now() - t0} ms)`);
        }
      },
    };
  }

  async up(opts: MigrateOptions): Promise<string[]> {
    const p = this.pipeline;
    await this.ensureDatabase(opts);
    const existing = await finalColumns(this.db, p);
    if (existing) {
      const diff = await finalTableDiff(this.db, p, existing);
      if (diff.some((d) => !d.startsWith('+'))) {
        throw new WinnowError(
          'TABLE_MISMATCH',
          `pipeline ${p.name}: the existing table ${p.sink.database}.${p.sink.table} does not match the configured columns; nothing was created:\n${diff.join('\n')}`,
          { hint: 'change the columns in the configuration, or the table, so that they agree' },
        );
      }
      for (const d of diff) opts.print(`  note: ${d}`);
    } else if (p.sink.mode === 'adopt') {
      throw new WinnowError('TABLE_MISMATCH', `pipeline ${p.name}: sink.mode is adopt but table ${p.sink.database}.${p.sink.table} does not exist; nothing was created`, {
        hint: 'create the table first, or set sink.mode: create',
      });
    }
    const storage = this.storage(opts.dryRun);
    await storage.ensure();
    await this.assertNotAhead(storage);
    const pending = await this.umzug(this.context(opts, existing !== undefined), storage).pending();
    if (p.source.initialOffset === 'latest' && pending.length > 0 && opts.seedConsumerGroup) {
      if (opts.dryRun) opts.print(`-- consumer group ${p.source.consumerGroup}: would start at the log end (initialOffset: latest)\n`);
      else {
        const n = await opts.seedConsumerGroup();
        opts.print(`  consumer group ${p.source.consumerGroup}: ${n > 0 ? `starts at the log end of ${n} partitions` : 'has offsets already; left as it is'}`);
      }
    }
    const done = await this.umzug(this.context(opts, existing !== undefined), storage).up(opts.to === undefined ? {} : { to: opts.to });
    if (existing && !opts.dryRun) await this.ensureInsertDeduplication(opts);
    return done.map((m) => m.name);
  }

  /** Insert deduplication on a non-replicated table needs a deduplication window (off by default). */
  private async ensureInsertDeduplication(opts: MigrateOptions): Promise<void> {
    const n = objectNames(this.pipeline);
    const rows = await this.db.rows<{ engine: string; create: string }>(
      'SELECT engine, create_table_query AS create FROM system.tables WHERE database = {db:String} AND name = {t:String}',
      { db: n.database, t: n.final },
    );
    const row = rows[0];
    if (!row || row.engine.startsWith('Replicated') || /non_replicated_deduplication_window\s*=\s*[1-9]/.test(row.create)) return;
    await this.db.command(`ALTER TABLE ${qualified(n.database, n.final)} MODIFY SETTING non_replicated_deduplication_window = 10000`);
    opts.print(`  set non_replicated_deduplication_window = 10000 on ${n.final} (re-run slices are recognised and not inserted twice)`);
  }

  /** Creates the sink database only when it is missing: an existing one needs no CREATE DATABASE grant. */
  private async ensureDatabase(opts: MigrateOptions): Promise<void> {
    const database = this.pipeline.sink.database;
    const found = await this.db.rows<{ n: string }>(
      'SELECT count() AS n FROM system.databases WHERE name = {db:String}',
      { db: database },
    );
    if (Number(found[0]?.n ?? 0) > 0) return;
    const sql = `CREATE DATABASE IF NOT EXISTS ${ident(database)}`;
    if (opts.dryRun) {
      opts.print(`-- database\n${sql};\n`);
      return;
    }
    await this.db.command(sql);
  }

  async down(opts: MigrateOptions): Promise<string[]> {
    const storage = this.storage(opts.dryRun);
    await this.assertNotAhead(storage);
    const done = await this.umzug(this.context(opts, true), storage).down({ to: 0 });
    return done.map((m) => m.name);
  }

  async status(): Promise<MigrationStatus[]> {
    const executed = new Set(await this.storage(true).executed());
    return migrations.map((m) => ({ name: m.name, executed: executed.has(m.name) }));
  }
}
