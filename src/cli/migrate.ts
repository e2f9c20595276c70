import { describeError, WinnowError } from '../errors.ts';
import { Migrator } from '../provisioning/migrator.ts';
import { kafkaFor } from '../kafka/client.ts';
import { seedGroupAtLatest } from '../kafka/offsets.ts';
import { CONFIG_FLAG_HELP, configPath, kafkaPasswordFor, load } from './context.ts';
import { parseFlags, type Command } from './command.ts';
import { passesPreflight } from './preflight.ts';

const help = `Usage: winnow migrate <up|down|status> [--config FILE] [--pipeline NAME] [--dry-run] [--drop-final]

Provisions, inside ClickHouse, every object of each pipeline: the Kafka-engine
queue, staging and dead letters with their materialized views, the seen-keys
table (TTL), the final table (or checks an adopted one), and the slices table.
History is kept in winnow_migrations_<pipeline> of the sink database. Safe to
run twice, and from two hosts at once.

  up           create what is missing, after a pre-flight (the checks of winnow
               config check, with the grants migrate up needs): when a check
               fails, each failure is one line and nothing is created
  down         drop the pipeline's objects (the final table is kept unless --drop-final)
  status       list migrations and whether they ran

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME  only this pipeline              (default: all in the file)
  --dry-run        print the SQL instead of running it (up, down)
  --drop-final     with down: also drop the final table and its data`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  'drop-final': { type: 'boolean', default: false },
} as const;

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'provision (up), remove (down) or inspect (status) the pipelines\' ClickHouse objects',
  help,
  async run(args) {
    const { values, positionals } = parseFlags('migrate', args, flags);
    const [action, ...extra] = positionals;
    if (extra.length > 0) throw new WinnowError('USAGE', `migrate: unexpected argument "${extra[0]}"`);
    if (action !== 'up' && action !== 'down' && action !== 'status') {
      throw new WinnowError('USAGE', action ? `migrate: unknown action "${action}", expected up, down or status` : 'migrate: say up, down or status', {
        hint: 'see: winnow migrate --help',
      });
    }
    if (values['drop-final'] && action !== 'down') throw new WinnowError('USAGE', 'migrate: --drop-final goes with down only');
    if (values['dry-run'] && action === 'status') throw new WinnowError('USAGE', 'migrate: --dry-run goes with up or down');
    const loaded = await load(configPath(values.config), values.pipeline);
    const out = (line: string): void => {
      process.stdout.write(line + '\n');
    };
    let failed = 0;
    try {
      if (action === 'up') {
        const ok = (line: string): void => out(values['dry-run'] ? `-- ${line}` : line);
        const fail = (line: string): void => void process.stderr.write(`winnow migrate up: ${line}\n`);
        const preflight = { grants: ['migrate' as const], outcome: 'nothing was created', ok, fail };
        if (!(await passesPreflight(loaded.config, loaded.pipelines, preflight))) return 1;
      }
      for (const { pipeline, db } of loaded.pipelines) {
        const m = new Migrator(db, pipeline);
        try {
          if (action === 'status') {
            out(`pipeline ${pipeline.name} (${pipeline.sink.database} on ${pipeline.sink.url}):`);
            for (const s of await m.status()) out(`  ${s.executed ? 'done   ' : 'pending'}  ${s.name}`);
            continue;
          }
          const opts = {
            dryRun: values['dry-run'],
            kafkaPassword: kafkaPasswordFor(pipeline),
            dropFinal: values['drop-final'],
            print: out,
            seedConsumerGroup: async () => {
              const admin = kafkaFor(pipeline).admin();
              await admin.connect();
              try {
                return await seedGroupAtLatest(admin, pipeline.source.consumerGroup, pipeline.source.topics);
              } finally {
                await admin.disconnect();
              }
            },
          };
          if (!opts.dryRun) out(`pipeline ${pipeline.name}: migrate ${action}`);
          else out(`-- pipeline ${pipeline.name}: migrate ${action} (dry run: nothing is executed)`);
          const done = action === 'up' ? await m.up(opts) : await m.down(opts);
          if (!opts.dryRun) out(done.length === 0 ? `pipeline ${pipeline.name}: up to date` : `pipeline ${pipeline.name}: ${action === 'up' ? 'applied' : 'reverted'} ${done.join(', ')}`);
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
