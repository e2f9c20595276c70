import { causeChain, describeError, WinnowError } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { Command } from './command.ts';
import { checkCommand } from './check.ts';
import { configCommand } from './config.ts';
import { deadlettersCommand } from './deadletters.ts';
import { devCommand } from './dev.ts';
import { migrateCommand } from './migrate.ts';
import { replayCommand } from './replay.ts';
import { runCommand } from './run.ts';
import { statsCommand } from './stats.ts';
import { topCommand } from './top.ts';

const commands: Command[] = [
  devCommand,
  configCommand,
  migrateCommand,
  runCommand,
  statsCommand,
  topCommand,
  checkCommand,
  replayCommand,
  deadlettersCommand,
];

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'winnow: deduplicate Kafka event streams into ClickHouse, exactly, inside ClickHouse.',
    '',
    'Usage: winnow <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
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
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`winnow: unknown command "${name}"\n\n${mainHelp()}\n`);
    return 2;
  }
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
