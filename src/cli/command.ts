import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WinnowError } from '../errors.ts';

export interface Command {
  name: string;
  summary: string;
  /** Full help text: usage, every flag with its default, env vars. */
  help: string;
  /** its output is a JSON log (`winnow run`): a failure is printed as a JSON line too */
  jsonLog?: boolean;
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs that turns its TypeErrors into usage errors naming the command. */
export function parseFlags<O extends Options>(command: string, args: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new WinnowError('USAGE', `${command}: ${(err as Error).message}`, {
      hint: `see: winnow ${command} --help`,
    });
  }
}

export function parsePort(command: string, flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new WinnowError(
      'USAGE',
      `${command}: --${flag} must be a port number 0-65535 (0 picks a free one), got "${value}"`,
    );
  }
  return n;
}
