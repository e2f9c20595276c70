/**
 * Pure helpers for building SQL text. Values travel as query parameters
 * wherever ClickHouse accepts them; DDL positions that take no parameters
 * (engine settings, defaults) get literals through `quoteString`.
 * Identifiers are validated, then back-quoted.
 */
import { readFileSync } from 'node:fs';
import { IDENTIFIER } from '../config/rules.ts';
import { WinnowError } from '../errors.ts';

/** A statement (or a condition) and the values of its `{name:Type}` parameters. */
export interface ParamSql {
  sql: string;
  params: Record<string, unknown>;
}

export function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new WinnowError('INTERNAL', `not a valid identifier: ${JSON.stringify(name)}`);
  return '`' + name + '`';
}

export function qualified(database: string, table: string): string {
  return `${ident(database)}.${ident(table)}`;
}

/** A ClickHouse string literal: backslash and quote escaped, control bytes as \xNN. */
export function quoteString(value: string): string {
  let out = "'";
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + "'";
}

const templateCache = new Map<string, string>();

function loadTemplate(file: URL): string {
  let text = templateCache.get(file.href);
  if (text === undefined) {
    text = readFileSync(file, 'utf8');
    templateCache.set(file.href, text);
  }
  return text;
}

/**
 * Fills `{{name}}` placeholders of a SQL template with already-rendered SQL
 * fragments. ClickHouse's own `{name:Type}` parameters are left for the server.
 * A placeholder without a value, or a value without a placeholder, is a bug.
 */
export function renderTemplate(text: string, vars: Record<string, string>, name = 'template'): string {
  const used = new Set<string>();
  const out = text.replace(/\{\{(\w+)\}\}/g, (_m, key: string) => {
    const v = vars[key];
    if (v === undefined) throw new WinnowError('INTERNAL', `${name}: no value for {{${key}}}`);
    used.add(key);
    return v;
  });
  for (const key of Object.keys(vars)) {
    if (!used.has(key)) throw new WinnowError('INTERNAL', `${name}: value for {{${key}}} has no placeholder`);
  }
  return out.trim().replace(/;\s*$/, '');
}

/** Renders a template file (its owner passes `new URL('./x.sql', import.meta.url)`). */
export function renderSqlFile(file: URL, vars: Record<string, string>): string {
  return renderTemplate(loadTemplate(file), vars, file.pathname.split('/').slice(-2).join('/'));
}
