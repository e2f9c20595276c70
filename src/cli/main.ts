import { causeChain, describeError, WinnowError } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { Command } from './command.ts';

/**
 * The commands, each loaded only when it runs: `winnow --help` must answer at once (README, startup time),
 * and a command's module pulls in the ClickHouse client, kafkajs, fastify, umzug and zod. The name and
 * summary here are the module's own (test/unit/cli-main.test.ts checks that they agree).
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'dev',
    summary: 'start, stop or inspect the embedded ClickHouse and local Kafka (no Docker needed)',
    load: async () => (await import('./dev.ts')).devCommand,
  },
  {
    name: 'config',
    summary: 'check a pipeline definition against Kafka and ClickHouse before anything is created (config check)',
    load: async () => (await import('./config.ts')).configCommand,
  },
  {
    name: 'migrate',
    summary:
      "provision (up), compare with the configuration (plan, status) or remove (down) the pipelines' ClickHouse objects",
    load: async () => (await import('./migrate.ts')).migrateCommand,
  },
  {
    name: 'run',
    summary: 'run the controller daemon and its HTTP API',
    load: async () => (await import('./run.ts')).runCommand,
  },
  {
    name: 'stats',
    summary: 'print dedup statistics of the pipelines',
    load: async () => (await import('./stats.ts')).statsCommand,
  },
  {
    name: 'top',
    summary: 'live view of the pipelines: rates, duplicates, lag, last slice, health',
    load: async () => (await import('./top.ts')).topCommand,
  },
  {
    name: 'check',
    summary: "check and repair the pipelines' consistency (no duplicates, no gaps, counts that reconcile)",
    load: async () => (await import('./check.ts')).checkCommand,
  },
  {
    name: 'replay',
    summary:
      're-process a range from an offset or a timestamp (adds nothing already represented); a running daemon does it',
    load: async () => (await import('./replay.ts')).replayCommand,
  },
  {
    name: 'deadletters',
    summary: 'list dead letters, or re-ingest them once their cause is fixed',
    load: async () => (await import('./deadletters.ts')).deadlettersCommand,
  },
  {
    name: 'index',
    summary: 'rebuild the seen-key index (dedup.index rocksdb) from the seen keys (index rebuild)',
    load: async () => (await import('./seen-index.ts')).indexCommand,
  },
];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'winnow: deduplicate Kafka event streams into ClickHouse, exactly, inside ClickHouse.',
    '',
    'Usage: winnow <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `winnow <command> --help` for the options of a command.',
    'A failure is one line naming the URL or the configuration key; --verbose (any command) adds its causes.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp() + '\n');
    return name === undefined ? 1 : 0;
  }
  if (name === '--version') {
    process.stdout.write('winnow 0.1.0\n');
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`winnow: unknown command "${name}"\n\n${mainHelp()}\n`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.help + '\n');
    return 0;
  }
  const verbose = rest.includes('--verbose');
  const args = rest.filter((a) => a !== '--verbose');
  try {
    return await command.run(args);
  } catch (err) {
    const causes = verbose ? causeChain(err) : [];
    if (command.jsonLog) {
      // Everything `winnow run` prints is a JSON line, its last words included.
      createLogger().error(describeError(err), {
        command: name,
        ...(err instanceof WinnowError ? { code: err.code } : {}),
        ...(verbose ? { causes } : {}),
      });
    } else {
      process.stderr.write(`winnow ${name}: error: ${describeError(err)}\n`);
      for (const c of causes) process.stderr.write(`  caused by: ${c}\n`);
    }
    if (process.env['WINNOW_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
    return err instanceof WinnowError && err.code === 'USAGE' ? 2 : 1;
  }
}
