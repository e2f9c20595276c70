import { WinnowError } from '../errors.ts';
import { GRANT_PURPOSES, type Check, type GrantPurpose } from '../provisioning/preflight.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, configPath, load } from './context.ts';
import { preflightAll } from './preflight.ts';

const help = `Usage: winnow config check [--config FILE] [--pipeline NAME] [--offline] [--for migrate|run] [--json]

Checks a pipeline definition against the servers before anything is created:
the pre-flight that \`migrate up\` and \`run\` also run, with one line per check
(ok, failed or skipped), each naming its key. Nothing is created or changed.
  config          the file is valid (every key, with the static checks of the
                  trusted SQL: columns[].type and expr, sink.engine,
                  sink.partitionBy: one type, expression or engine each; no
                  ";", comments or subqueries; quotes and brackets balanced)
  Kafka           source.brokers answer with source.auth (SASL login included),
                  and every topic of source.topics exists
  ClickHouse      sink.url answers as sink.user with sink.password
  grants          sink.user holds what migrate up needs (CREATE, DROP, ALTER,
                  TABLE ENGINE ... on sink.database) and what run, check, replay
                  and deadletters need (SELECT, INSERT, ALTER DELETE; DROP and
                  CREATE TABLE on the Kafka queue for a replay that rewinds it),
                  asked with CHECK GRANT
  types           ClickHouse knows every column type, and reads it as one type
                  where the CREATE TABLE puts it
  SQL fragments   every expr and sink.partitionBy parses as one expression and
                  resolves over its columns; sink.engine is one MergeTree engine
                  clause this ClickHouse has (formatQuerySingleLine, the text as a
                  query parameter; then EXPLAIN QUERY TREE, read-only)
Exit code 0 when no check failed, 1 otherwise.

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME     only this pipeline (default: all)
  --offline           ask no server: only the file and its static checks
  --for WHAT          whose grants to check: migrate (migrate up) or run (run, check,
                      replay, deadletters) (default: both)
  --json              print { "checks": [{ "pipeline", "key", "status", "text" }] }`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  offline: { type: 'boolean', default: false },
  for: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function purposes(value: string | undefined): GrantPurpose[] {
  if (value === undefined) return ['migrate', 'run'];
  if (value in GRANT_PURPOSES) return [value as GrantPurpose];
  throw new WinnowError('USAGE', `config check: --for must be migrate or run, got "${value}"`, {
    hint: 'see: winnow config --help',
  });
}

export const configCommand: Command = {
  name: 'config',
  summary: 'check a pipeline definition against Kafka and ClickHouse before anything is created (config check)',
  help,
  async run(args) {
    const { values, positionals } = parseFlags('config', args, flags);
    const [action, ...extra] = positionals;
    if (action !== 'check' || extra.length > 0) {
      throw new WinnowError(
        'USAGE',
        action === undefined
          ? 'config: say check'
          : `config: unknown action "${[action, ...extra].join(' ')}", expected check`,
        {
          hint: 'see: winnow config --help',
        },
      );
    }
    const grants = purposes(values.for);
    const file = configPath(values.config);
    let loaded;
    try {
      loaded = await load(file, values.pipeline);
    } catch (err) {
      if (!(err instanceof WinnowError) || err.code !== 'CONFIG_INVALID') throw err;
      for (const line of err.message.split('\n')) process.stdout.write(`failed  ${line}\n`);
      return 1;
    }
    try {
      const results = await preflightAll(loaded.config, loaded.pipelines, { grants, offline: values.offline });
      const all: (Check & { pipeline: string })[] = results.flatMap((r) =>
        r.checks.map((c) => ({ pipeline: r.target.pipeline.name, ...c })),
      );
      if (values.json) {
        process.stdout.write(JSON.stringify({ file, checks: all }, null, 2) + '\n');
      } else {
        for (const c of all) process.stdout.write(`${c.status.padEnd(7)} ${c.key} ${c.text}\n`);
        const count = (s: Check['status']): number => all.filter((c) => c.status === s).length;
        process.stdout.write(`${file}: ${count('ok')} ok, ${count('failed')} failed, ${count('skipped')} skipped\n`);
      }
      return all.some((c) => c.status === 'failed') ? 1 : 0;
    } finally {
      await loaded.close();
    }
  },
};
