import { createInterface } from 'node:readline/promises';
import type { Admin } from 'kafkajs';
import { describeError, WinnowError } from '../errors.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { Migrator, type DownTarget, type Plan, type SourceOperations } from '../provisioning/migrator.ts';
import { kafkaFor } from '../kafka/client.ts';
import { copyGroupOffsets, seedGroupAtLatest, seedTopicsAtLatest } from '../kafka/offsets.ts';
import { CONFIG_FLAG_HELP, configPath, kafkaPasswordFor, load, type Target } from './context.ts';
import { parseFlags, type Command } from './command.ts';
import { passesPreflight } from './preflight.ts';

const help = `Usage: winnow migrate <up|plan|status|down> [--config FILE] [--pipeline NAME]
                      [--dry-run] [--recreate-source] [--yes] [--drop-final]

Provisions, inside ClickHouse, every object of each pipeline: the Kafka-engine
queue, staging and dead letters with their materialized views, the seen-keys
table (TTL), the final table (or checks an adopted one), and the slices table.
History is kept in winnow_migrations_<pipeline> of the sink database. Safe to
run twice, and from two hosts at once.

  up           run the pending migrations, then change in place what differs from
               the configuration: the Kafka source (brokers, topics, auth, group,
               consumers: the queue and its parsing view are recreated, nothing
               is lost), added columns (ALTER), the parsing of columns; any
               other change (key, window, time, types, engine, order, removed
               columns) is refused with the difference, before anything changes.
               First a pre-flight (the checks of winnow config check, with the
               grants of the migrate role): when a check fails, each failure is
               one line and nothing is created. Each step is said as it runs: the
               migration, each statement (object and kind) with its time, its total
  plan         how ClickHouse differs from the configuration, object by object
               (unchanged, differs, missing), and what up would do; exit 1 when
               up would refuse a change
  status       the migrations and whether they ran, and every object as plan shows it
  down         drop the pipeline's objects (the final table is kept unless
               --drop-final); lists them with their rows first and needs --yes,
               or y on a terminal

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME  only this pipeline              (default: all in the file)
  --dry-run        print the SQL instead of running it (up, down)
  --recreate-source
                   with up: recreate the Kafka queue and its parsing view even when they
                   compare equal (ClickHouse hides the password: a new one is not seen)
  --yes            with down: drop without asking
  --drop-final     with down: also drop the final table and its data`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  yes: { type: 'boolean', default: false },
  'recreate-source': { type: 'boolean', default: false },
  'drop-final': { type: 'boolean', default: false },
} as const;

const ACTIONS = ['up', 'plan', 'status', 'down'] as const;
type Action = (typeof ACTIONS)[number];

function out(line: string): void {
  process.stdout.write(line + '\n');
}

/** The Kafka admin of the pipeline's (new) source, for the consumer-group steps of an in-place change. */
async function withAdmin<T>(p: PipelineConfig, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaFor(p).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

function sourceOperations(p: PipelineConfig): SourceOperations {
  return {
    copyGroupOffsets: (from, to, topics, overwrite) =>
      withAdmin(p, (a) => copyGroupOffsets(a, from, to, topics, overwrite)),
    seedAtLatest: (group, topics) => withAdmin(p, (a) => seedTopicsAtLatest(a, group, topics)),
  };
}

/** One line per object, its notes, and (plan) what up would do. Returns true when up would refuse. */
function printPlan(plan: Plan, withActions: boolean): boolean {
  const width = Math.max(...plan.objects.map((o) => o.state.length));
  for (const o of plan.objects) {
    const diff = o.differences.map((d) => d.text + (d.fix === 'refuse' ? ' (refused)' : '')).join('; ');
    out(`  ${o.state.padEnd(width)}  ${o.title}${diff ? `: ${diff}` : ''}`);
  }
  for (const o of plan.objects) for (const n of o.notes) out(`  note: ${o.title}: ${n}`);
  if (!withActions) return false;
  if (plan.pending.length > 0) {
    out(
      `migrate up would run the ${plan.pending.length} pending migrations first, then compare again` +
        ' (--dry-run prints their SQL)',
    );
    return false;
  }
  if (plan.changes.refused.length > 0) {
    const refused = plan.changes.refused.map((r) => `${r.object}: ${r.text}${because(r.cause)}`);
    out(`migrate up would refuse: ${refused.join('; ')}`);
    return true;
  }
  if (plan.changes.steps.length === 0) out('migrate up would change nothing');
  else {
    out('migrate up would change in place:');
    for (const s of plan.changes.steps) out(`  ${s.title}`);
  }
  return false;
}

function because(cause: string | undefined): string {
  return cause ? ` (${cause})` : '';
}

function rows(n: number | undefined): string {
  return n === undefined ? '' : ` (${n} row${n === 1 ? '' : 's'})`;
}

function describeTarget(t: DownTarget, pipeline: string): string {
  if (t.kind === 'rows') return `the rows of pipeline ${pipeline} in ${t.name}${rows(t.rows)}`;
  return `${t.kind} ${t.name}${rows(t.rows)}`;
}

/** y/N on a terminal; false when stdin is none. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** Lists what down drops, per pipeline, and asks; true when it may go ahead. */
async function confirmDown(targets: Target[], dropFinal: boolean, yes: boolean): Promise<boolean> {
  for (const { pipeline, db } of targets) {
    const m = new Migrator(db, pipeline);
    const list = await m.downTargets(dropFinal);
    out(`pipeline ${pipeline.name} (${pipeline.sink.database} on ${pipeline.sink.url}): migrate down drops`);
    if (list.length === 0) out('  nothing: none of its objects exist');
    for (const t of list) out(`  ${describeTarget(t, pipeline.name)}`);
    if (!dropFinal) {
      const [f] = await db.rows<{ rows: string | null }>(
        'SELECT total_rows AS rows FROM system.tables WHERE database = {db:String} AND name = {t:String}',
        {
          db: pipeline.sink.database,
          t: pipeline.sink.table,
        },
      );
      if (f)
        out(
          `  and keeps the final table ${pipeline.sink.table}${rows(f.rows === null ? undefined : Number(f.rows))}` +
            ' (--drop-final drops it too)',
        );
    }
  }
  out(
    'Dropped tables lose their rows: the seen keys (duplicates of events already kept would pass again),' +
      ' staging and the dead letters.',
  );
  if (yes) return true;
  if (await confirm('Drop them? [y/N] ')) return true;
  process.stderr.write(
    process.stdin.isTTY
      ? 'winnow migrate: down: not confirmed; nothing was dropped\n'
      : 'winnow migrate: down drops the objects listed above; nothing was dropped:' +
          ' pass --yes (or run it on a terminal and answer y)\n',
  );
  return false;
}

export const migrateCommand: Command = {
  name: 'migrate',
  summary:
    "provision (up), compare with the configuration (plan, status) or remove (down) the pipelines' ClickHouse objects",
  help,
  async run(args) {
    const { values, positionals } = parseFlags('migrate', args, flags);
    const [given, ...extra] = positionals;
    if (extra.length > 0) throw new WinnowError('USAGE', `migrate: unexpected argument "${extra[0]}"`);
    if (!ACTIONS.includes(given as Action)) {
      throw new WinnowError(
        'USAGE',
        given
          ? `migrate: unknown action "${given}", expected up, plan, status or down`
          : 'migrate: say up, plan, status or down',
        {
          hint: 'see: winnow migrate --help',
        },
      );
    }
    const action = given as Action;
    if (values['drop-final'] && action !== 'down')
      throw new WinnowError('USAGE', 'migrate: --drop-final goes with down only');
    if (values.yes && action !== 'down') throw new WinnowError('USAGE', 'migrate: --yes goes with down only');
    if (values['recreate-source'] && action !== 'up')
      throw new WinnowError('USAGE', 'migrate: --recreate-source goes with up only');
    if (values['dry-run'] && (action === 'status' || action === 'plan'))
      throw new WinnowError('USAGE', 'migrate: --dry-run goes with up or down');
    const loaded = await load(configPath(values.config), values.pipeline);
    let failed = 0;
    try {
      if (action === 'up') {
        const ok = (line: string): void => out(values['dry-run'] ? `-- ${line}` : line);
        const fail = (line: string): void => void process.stderr.write(`winnow migrate up: ${line}\n`);
        const preflight = { grants: ['migrate' as const], outcome: 'nothing was created', ok, fail };
        if (!(await passesPreflight(loaded.config, loaded.pipelines, preflight))) return 1;
      }
      if (
        action === 'down' &&
        !values['dry-run'] &&
        !(await confirmDown(loaded.pipelines, values['drop-final'], values.yes))
      )
        return 1;
      for (const { pipeline, db } of loaded.pipelines) {
        const m = new Migrator(db, pipeline);
        try {
          if (action === 'status' || action === 'plan') {
            const plan = await m.plan(kafkaPasswordFor(pipeline));
            const pending =
              plan.pending.length === 0
                ? 'migrations up to date'
                : `migrations: ${plan.pending.length} pending (${plan.pending.join(', ')})`;
            out(`pipeline ${pipeline.name} (${pipeline.sink.database} on ${pipeline.sink.url}): ${pending}`);
            if (action === 'status') {
              const status = await m.status();
              for (const s of status) out(`  ${s.executed ? 'done   ' : 'pending'}  ${s.name}`);
            }
            if (printPlan(plan, action === 'plan')) failed++;
            continue;
          }
          const opts = {
            dryRun: values['dry-run'],
            kafkaPassword: kafkaPasswordFor(pipeline),
            dropFinal: values['drop-final'],
            recreateSource: values['recreate-source'],
            print: out,
            seedConsumerGroup: () =>
              withAdmin(pipeline, (a) => seedGroupAtLatest(a, pipeline.source.consumerGroup, pipeline.source.topics)),
            source: sourceOperations(pipeline),
          };
          if (!opts.dryRun) out(`pipeline ${pipeline.name}: migrate ${action}`);
          else out(`-- pipeline ${pipeline.name}: migrate ${action} (dry run: nothing is executed)`);
          if (action === 'up') {
            const r = await m.migrate(opts);
            if (opts.dryRun) continue;
            const did = [
              ...(r.migrations.length > 0 ? [`applied ${r.migrations.join(', ')}`] : []),
              ...(r.changed.length > 0 ? [`changed in place ${r.changed.join(', ')}`] : []),
            ];
            out(`pipeline ${pipeline.name}: ${did.length === 0 ? 'up to date' : did.join('; ')}`);
          } else {
            const done = await m.down(opts);
            if (!opts.dryRun)
              out(
                done.length === 0
                  ? `pipeline ${pipeline.name}: nothing to revert`
                  : `pipeline ${pipeline.name}: reverted ${done.join(', ')}`,
              );
          }
        } catch (err) {
          failed++;
          process.stderr.write(`winnow migrate: pipeline ${pipeline.name}: ${describeError(err)}\n`);
        }
      }
    } finally {
      await loaded.close();
    }
    return failed === 0 ? 0 : 1;
  },
};
