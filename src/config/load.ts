/**
 * From a YAML file to a validated WinnowConfig with defaults applied. Every
 * problem is reported at once, one line each, as a CONFIG_INVALID error.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { WinnowError } from '../errors.ts';
import { configError, describeIssues, type IssueLine } from './issues.ts';
import { createConfigSchema } from './schema.ts';
import type { Env, Secret, WinnowConfig } from './types.ts';

export { redactConfig } from './redact.ts';

/** Reads and validates a config file. `env` supplies `{ env: NAME }` secrets, which must be set. */
export async function loadConfigFile(path: string, env: Env = process.env): Promise<WinnowConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new WinnowError('CONFIG_INVALID', `config error: cannot read ${path}: ${reason}`, {
      hint: 'pass the path of a pipeline definition; examples/users.yaml is one to start from',
      cause: err,
    });
  }
  return parseConfig(text, path, env);
}

/** Parses YAML text; `source` names it in messages (usually the file path). */
export function parseConfig(text: string, source: string, env: Env = process.env): WinnowConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines: IssueLine[] = doc.errors.map((e) => {
      const at = e.linePos?.[0];
      // prettyErrors appends " at line L, column C:" and a source excerpt; keep the first part.
      const message = e.message.split(/ at line \d+, column \d+:?\n|\n/)[0] ?? e.message;
      return {
        path: at ? `line ${at.line}, column ${at.col}` : '(unknown position)',
        message: `YAML syntax: ${message}`,
      };
    });
    throw configError(source, lines, doc.errors[0]);
  }
  if (doc.contents === null) {
    throw configError(source, [
      { path: '(top level)', message: 'the file is empty; expected a mapping with keys server, pipelines' },
    ]);
  }
  return validateConfig(doc.toJS({ maxAliasCount: 100 }), source, env);
}

/** Validates an already parsed document (for example from JSON) and applies the defaults. */
export function validateConfig(obj: unknown, source: string, env: Env = process.env): WinnowConfig {
  const result = createConfigSchema(env).safeParse(obj, { reportInput: true });
  if (result.success) return result.data;
  throw configError(source, describeIssues(result.error.issues), result.error);
}

/**
 * The value of a secret. `path` (like `pipelines[0].sink.password`) names the
 * key in the error when the environment variable is not set.
 */
export function resolveSecret(s: Secret, env: Env = process.env, path = 'a secret'): string {
  if (typeof s === 'string') return s;
  const value = env[s.env];
  if (value === undefined) {
    throw new WinnowError(
      'CONFIG_INVALID',
      `config error: environment variable ${s.env} (named at ${path}) is not set`,
      {
        hint: `export ${s.env}=... before starting winnow`,
      },
    );
  }
  return value;
}
