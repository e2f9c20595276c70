/**
 * Turns validation issues into one line each, naming the file, the dotted path
 * of the offending key as written in the file, the expected form and what was
 * found:  config error in winnow.yaml at pipelines[0].dedup.window: expected
 * a duration like 90s, 15m, 1h or 7d, got "1 hour"
 */
import type { z } from 'zod';
import { WinnowError } from '../errors.ts';
import { SECRET_KEYS } from './rules.ts';

/** `pipelines[0].dedup.window`; keys that are not plain names are quoted: `labels["a.b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out === '' ? '(top level)' : out;
}

/** A short rendering of a found value. */
function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return typeof v;
}

export interface IssueLine {
  path: string;
  message: string;
}

/** One entry per problem, in the order zod met them; exact repeats dropped. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): IssueLine[] {
  const out: IssueLine[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      // The strict object's error map wrote one message line per key, in order.
      const messages = iss.message.split('\n');
      iss.keys.forEach((key, i) => {
        out.push({ path: formatPath([...iss.path, key]), message: messages[i] ?? 'unknown key' });
      });
      continue;
    }
    const secret = iss.path.some((p) => typeof p === 'string' && SECRET_KEYS.includes(p));
    const found = iss.message.startsWith('expected ') && iss.input !== undefined && !secret;
    out.push({ path: formatPath(iss.path), message: found ? `${iss.message}, got ${show(iss.input)}` : iss.message });
  }
  const seen = new Set<string>();
  return out.filter((l) => {
    const k = `${l.path}\n${l.message}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

/** The error for a file with problems: one line per problem, each complete on its own. */
export function configError(source: string, lines: IssueLine[], cause?: unknown): WinnowError {
  const message = lines.map((l) => `config error in ${source} at ${l.path}: ${l.message}`).join('\n');
  const what = lines.length === 1 ? 'this problem' : `these ${lines.length} problems`;
  return new WinnowError('CONFIG_INVALID', message, {
    hint: `fix ${what} in ${source}; examples/users.yaml shows every key with a comment`,
    cause,
  });
}
