/**
 * Why one file over 300 lines: umzug's storage, up, down, status and plan share the history table and the pipeline's statements.
 *
 * `winnow migrate`: umzug over the numbered migrations in migrations/, one
 * history per pipeline kept in ClickHouse (winnow_migrations of the sink
 * database). Every statement is idempotent (IF NOT EXISTS), so two hosts
 * migrating at once both succeed and build the same objects.
 */
import { Umzug, type UmzugStorage } from 'umzug';
import { migrations, type MigrationContext } from './migrations/index.ts';
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified } from '../clickhouse/sql.ts';
import { renderDdl } from './ddl.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError, WinnowError } from '../errors.ts';
import {
  describeRefusal,
  inspect,
  normaliseTypes,
  planChanges,
  refusalHint,
  type ChangePlan,
  type ObjectDrift,
  type Step,
} from './drift.ts';
import { parseCreateQuery } from './create-query.ts';
import { MIGRATIONS_TABLE, objectNames, type Statement } from './objects.ts';

export interface MigrateOptions {
  dryRun: boolean;
  kafkaPassword: string | undefined;
  dropFinal?: boolean;
  /** progress lines and, in dry-run, the SQL */
  print: (line: string) => void;
  /** for initialOffset latest: commit the log end for a new consumer group before the queue exists */
  seedConsumerGroup?: () => Promise<number>;
  /** up: stop after this migration (tests build what an older winnow built); nothing is changed in place then */
  to?: string;
  /** up: after the migrations, change in place what differs from the configuration (default true) */
  inPlace?: boolean;
  /** up: recreate the Kafka queue even when it compares equal (a new password cannot be compared) */
  recreateSource?: boolean;
  /** up: the consumer group operations of a changed source (without them a new group starts at the earliest offset) */
  source?: SourceOperations;
}

/** What `migrate up` does to Kafka consumer groups when the source changes in place. */
export interface SourceOperations {
  /**
   * commits `from`'s offsets of `topics` to `to` unless `to` has offsets (or `overwrite`);
   * the partitions set, or undefined when it had some
   */
  copyGroupOffsets(from: string, to: string, topics: string[], overwrite: boolean): Promise<number | undefined>;
  /** commits the log end of the partitions of `topics` that `group` has no offset for; the partitions set */
  seedAtLatest(group: string, topics: string[]): Promise<number>;
}

/** What `migrate up` did: the migrations it ran and the objects it changed in place. */
export interface UpResult {
  migrations: string[];
  changed: string[];
}

/** What `migrate plan` and `status` show: pending migrations, every object, and what up would do. */
export interface Plan {
  pending: string[];
  objects: ObjectDrift[];
  changes: ChangePlan;
}

/** One object `migrate down` drops (or the rows of the pipeline it deletes from a shared table). */
export interface DownTarget {
  kind: 'table' | 'view' | 'rows';
  name: string;
  /** rows (of a table; of the pipeline in a shared table); undefined for a view or a table that keeps none */
  rows: number | undefined;
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

const CURRENT_NAME = new Map(
  Object.entries(MIGRATION_ALIASES).flatMap(([name, old]) => old.map((o) => [o, name] as const)),
);

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
    await this.db.command(
      `DELETE FROM ${this.table} WHERE name IN {names:Array(String)}`,
      { names },
      { mutations_sync: '2' },
    );
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
  const exists = await db.rows<{ n: string }>(
    'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {t:String}',
    {
      db: n.database,
      t: n.final,
    },
  );
  return Number(exists[0]?.n ?? 0) > 0 ? [] : undefined;
}

/** Differences between the existing final table and the configured columns; empty when they match. */
export async function finalTableDiff(db: Db, p: PipelineConfig, existing: Column[]): Promise<string[]> {
  const wanted = await normaliseTypes(
    db,
    p.columns.map((c) => c.type),
  );
  const have = new Map(existing.map((c) => [c.name, c.type]));
  const diff: string[] = [];
  p.columns.forEach((c) => {
    const t = have.get(c.name);
    const w = wanted.get(c.type) ?? c.type;
    if (t === undefined) diff.push(`- missing column ${c.name} ${w}`);
    else if (t !== w) diff.push(`~ column ${c.name}: table has ${t}, configuration says ${w}`);
  });
  for (const c of existing) {
    if (!p.columns.some((x) => x.name === c.name))
      diff.push(`+ extra column ${c.name} ${c.type} (not in the configuration; it will get its default value)`);
  }
  return diff;
}

/** What `migrate` prints for a migration that has no statement for this pipeline. */
export const NOTHING_TO_DO = 'nothing to do for this pipeline';

export class Migrator {
  /** statements the migration now running has run (or printed, in --dry-run) */
  private statementsRun = 0;

  constructor(
    private readonly db: Db,
    private readonly pipeline: PipelineConfig,
  ) {}

  private umzug(ctx: MigrationContext, storage: ClickHouseStorage): Umzug<MigrationContext> {
    return new Umzug<MigrationContext>({
      migrations: migrations.map((m) => ({
        name: m.name,
        up: ({ context }) => m.up(context),
        down: ({ context }) => m.down(context),
      })),
      context: ctx,
      storage,
      logger: undefined,
    });
  }

  /** Each migration's name as it starts and its time when it ends; its statements print themselves between. */
  private announce(umzug: Umzug<MigrationContext>, opts: MigrateOptions): void {
    let t0 = 0;
    umzug.on('migrating', ({ name }) => {
      t0 = Date.now();
      this.statementsRun = 0;
      opts.print(opts.dryRun ? `-- migration ${name}\n` : `  migration ${name}`);
    });
    umzug.on('reverting', ({ name }) => {
      t0 = Date.now();
      this.statementsRun = 0;
      opts.print(opts.dryRun ? `-- revert ${name}\n` : `  revert ${name}`);
    });
    const finished = ({ name }: { name: string }): void => {
      // A migration for objects this pipeline does not have (0013: only dedup.index rocksdb) says so.
      if (this.statementsRun === 0) opts.print(opts.dryRun ? `-- ${NOTHING_TO_DO}\n` : `    ${NOTHING_TO_DO}`);
      if (!opts.dryRun) opts.print(`  ${name} done (${Date.now() - t0} ms)`);
    };
    umzug.on('migrated', finished);
    umzug.on('reverted', finished);
  }

  private storage(dryRun: boolean): ClickHouseStorage {
    return new ClickHouseStorage(
      this.db,
      qualified(this.pipeline.sink.database, `${MIGRATIONS_TABLE}_${this.pipeline.name}`),
      dryRun,
    );
  }

  private async assertNotAhead(storage: ClickHouseStorage): Promise<void> {
    const known = new Set(migrations.map((m) => m.name));
    const unknown = (await storage.executed()).filter((n) => !known.has(n));
    if (unknown.length > 0) {
      throw new WinnowError(
        'MIGRATION',
        `pipeline ${this.pipeline.name}: the database has run migrations this winnow does not know (${unknown.join(', ')})`,
        {
          hint: 'it was provisioned by a newer winnow; upgrade winnow before running it against this database',
        },
      );
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
          this.statementsRun++;
          if (opts.dryRun) {
            opts.print(`-- ${s.title}\n${s.display};\n`);
            continue;
          }
          const t0 = Date.now();
          await this.db.command(s.sql);
          opts.print(`    ${s.title} (${Date.now() - t0} ms)`);
        }
      },
    };
  }

  /** The migrations `up` ran (tests and the benchmark); see migrate() for the whole of it. */
  async up(opts: MigrateOptions): Promise<string[]> {
    return (await this.migrate(opts)).migrations;
  }

  /**
   * `migrate up`: the pending migrations, then (unless `to` or `inPlace: false`)
   * what still differs from the configuration, changed in place, or refused
   * with the difference before anything is changed. With pending migrations
   * the comparison waits until they ran (they build from this configuration
   * too); a final table that lacks configured columns is refused before them.
   */
  async migrate(opts: MigrateOptions): Promise<UpResult> {
    const p = this.pipeline;
    const inPlace = opts.to === undefined && opts.inPlace !== false;
    await this.ensureDatabase(opts);
    const storage = this.storage(opts.dryRun);
    await this.assertNotAhead(storage);
    const executed = new Set(await storage.executed());
    const pendingBefore = migrations.filter((m) => !executed.has(m.name)).map((m) => m.name);
    const existing = await finalColumns(this.db, p);
    let early: Plan | undefined;
    if (pendingBefore.length === 0 && inPlace) {
      early = await this.plan(opts.kafkaPassword, opts.recreateSource);
      this.refuse(early.changes);
    } else await this.checkFinalBeforeMigrations(existing, opts);
    await storage.ensure();
    const pending = await this.umzug(this.context(opts, existing !== undefined), storage).pending();
    if (p.source.initialOffset === 'latest' && pending.length > 0 && opts.seedConsumerGroup) {
      const group = p.source.consumerGroup;
      if (opts.dryRun) opts.print(`-- consumer group ${group}: would start at the log end (initialOffset: latest)\n`);
      else {
        const n = await opts.seedConsumerGroup();
        const where = n > 0 ? `starts at the log end of ${n} partitions` : 'has offsets already; left as it is';
        opts.print(`  consumer group ${group}: ${where}`);
      }
    }
    const umzug = this.umzug(this.context(opts, existing !== undefined), storage);
    this.announce(umzug, opts);
    const done = await umzug.up(opts.to === undefined ? {} : { to: opts.to });
    const migrated = done.map((m) => m.name);
    if (!inPlace) return { migrations: migrated, changed: [] };
    if (opts.dryRun && pendingBefore.length > 0) {
      if (executed.size > 0)
        opts.print(
          '-- then the objects are compared with the configuration;' +
            ' after up, winnow migrate plan shows what still differs\n',
        );
      return { migrations: migrated, changed: [] };
    }
    const plan = early ?? (await this.plan(opts.kafkaPassword, opts.recreateSource));
    this.refuse(plan.changes, migrated);
    const changed = plan.objects.filter((o) => o.state !== 'unchanged');
    for (const o of changed) {
      const diff = o.differences.map((d) => d.text).join('; ');
      opts.print(`${opts.dryRun ? '-- ' : '  '}${o.state}  ${o.title}${diff ? `: ${diff}` : ''}`);
    }
    await this.runSteps(plan.changes.steps, opts);
    return { migrations: migrated, changed: plan.changes.steps.length > 0 ? changed.map((o) => o.title) : [] };
  }

  /** Throws the refusal, in one line, when the plan refuses a change. */
  private refuse(changes: ChangePlan, migrated: string[] = []): void {
    if (changes.refused.length === 0) return;
    const ran = migrated.length > 0 ? ` (the pending migrations ran: ${migrated.join(', ')})` : '';
    throw new WinnowError('MIGRATION', `${describeRefusal(this.pipeline, changes.refused)}${ran}`, {
      hint: refusalHint(this.pipeline, changes.refused),
    });
  }

  /** The final table against the columns, before the first migrations build anything on it. */
  private async checkFinalBeforeMigrations(existing: Column[] | undefined, opts: MigrateOptions): Promise<void> {
    const p = this.pipeline;
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
      throw new WinnowError(
        'TABLE_MISMATCH',
        `pipeline ${p.name}: sink.mode is adopt but table ${p.sink.database}.${p.sink.table} does not exist; nothing was created`,
        {
          hint: 'create the table first, or set sink.mode: create',
        },
      );
    }
  }

  private async runSteps(steps: Step[], opts: MigrateOptions): Promise<void> {
    // Groups that took another's offsets in this run: only they get the final offsets too.
    const carried = new Set<string>();
    for (const s of steps) {
      if (opts.dryRun) {
        opts.print(s.kind === 'sql' ? `-- ${s.title}\n${s.display};\n` : `-- ${s.title}\n`);
        continue;
      }
      try {
        await this.runStep(s, opts, carried);
      } catch (err) {
        throw new WinnowError('MIGRATION', `${s.title}: ${describeError(err)}`, {
          hint: 'the steps before it ran; winnow migrate up again finishes the change (it creates what is missing)',
          cause: err,
        });
      }
    }
  }

  private async runStep(s: Step, opts: MigrateOptions, carried: Set<string>): Promise<void> {
    const t0 = Date.now();
    if (s.kind === 'sql') {
      await this.db.command(s.sql);
      opts.print(`    ${s.title} (${Date.now() - t0} ms)`);
      return;
    }
    const source = opts.source;
    if (s.kind === 'copy-group') {
      if (!source) {
        if (!s.again)
          opts.print(`    consumer group ${s.to}: no Kafka access here; a new group starts at the earliest offset`);
        return;
      }
      if (s.again && !carried.has(s.to)) return;
      const n = await source.copyGroupOffsets(s.from, s.to, s.topics, s.again);
      if (n !== undefined) carried.add(s.to);
      opts.print(
        n === undefined
          ? `    consumer group ${s.to}: has offsets already; left as it is`
          : `    ${s.title} (${n} partitions)`,
      );
      return;
    }
    if (!source) return;
    const n = await source.seedAtLatest(s.group, s.topics);
    opts.print(`    ${s.title} (${n} partitions)`);
  }

  /** Pending migrations, every object against the configuration, and what up would change or refuse. */
  async plan(kafkaPassword: string | undefined, recreateSource = false): Promise<Plan> {
    const executed = new Set(await this.storage(true).executed());
    const pending = migrations.filter((m) => !executed.has(m.name)).map((m) => m.name);
    const objects = await inspect(this.db, this.pipeline, kafkaPassword);
    const queue = objects.find((o) => o.role === 'queue');
    if (recreateSource && queue?.state === 'unchanged') {
      // What cannot be compared (a new Kafka password) is applied by recreating the queue anyway.
      queue.state = 'differs';
      queue.differences.push({ text: 'recreated as asked (--recreate-source)', fix: 'source' });
    }
    const n = objectNames(this.pipeline);
    const [live] = await this.db.rows<{ q: string }>(
      'SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = {t:String}',
      { db: n.database, t: n.queue },
    );
    const changes = planChanges(this.pipeline, objects, kafkaPassword, live ? parseCreateQuery(live.q) : undefined);
    return { pending, objects, changes };
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
    const umzug = this.umzug(this.context(opts, true), storage);
    this.announce(umzug, opts);
    const done = await umzug.down({ to: 0 });
    return done.map((m) => m.name);
  }

  /**
   * What `down` would drop, from the statements its migrations would run:
   * each table with its rows, each view, and the pipeline's rows in the
   * tables its database's pipelines share. Only what exists.
   */
  async downTargets(dropFinal: boolean): Promise<DownTarget[]> {
    const statements: string[] = [];
    await this.down({ dryRun: true, kafkaPassword: undefined, dropFinal, print: (line) => statements.push(line) });
    const db = this.pipeline.sink.database;
    const dropped: { kind: 'table' | 'view'; name: string }[] = [];
    const shared: string[] = [];
    for (const text of statements) {
      const drop = /DROP (TABLE|VIEW) IF EXISTS `[^`]+`\.`([^`]+)`/.exec(text);
      if (drop) dropped.push({ kind: drop[1] === 'VIEW' ? 'view' : 'table', name: drop[2]! });
      const del = /DELETE FROM `[^`]+`\.`([^`]+)` WHERE pipeline =/.exec(text);
      if (del) shared.push(del[1]!);
    }
    const names = [...new Set(dropped.map((d) => d.name))];
    const live = new Map(
      (
        await this.db.rows<{ name: string; rows: string | null }>(
          'SELECT name, total_rows AS rows FROM system.tables' +
            ' WHERE database = {db:String} AND name IN {names:Array(String)}',
          { db, names: [...names, ...shared] },
        )
      ).map((r) => [r.name, r.rows === null ? undefined : Number(r.rows)]),
    );
    const out: DownTarget[] = [];
    for (const name of names) {
      const d = dropped.find((x) => x.name === name)!;
      if (live.has(name)) out.push({ kind: d.kind, name, rows: d.kind === 'view' ? undefined : live.get(name) });
    }
    for (const name of [...new Set(shared)]) {
      if (!live.has(name)) continue;
      const [c] = await this.db.rows<{ n: string }>(
        `SELECT count() AS n FROM ${qualified(db, name)} WHERE pipeline = {p:String}`,
        { p: this.pipeline.name },
      );
      out.push({ kind: 'rows', name, rows: Number(c?.n ?? 0) });
    }
    return out;
  }

  async status(): Promise<MigrationStatus[]> {
    const executed = new Set(await this.storage(true).executed());
    return migrations.map((m) => ({ name: m.name, executed: executed.has(m.name) }));
  }
}
