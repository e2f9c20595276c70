/**
 * The ClickHouse privileges a statement needs, read off its form, in the
 * notation of src/provisioning/grants.ts: a bare privilege (`SELECT`) is on
 * the sink database's objects; `PRIV ON db.table` on one object (or a system
 * table); `TABLE ENGINE ON Kafka` for creating (or attaching) a table of that
 * engine. The unit tests hold every statement winnow builds against the
 * grants README names, both ways. A statement of a form not listed here
 * throws: its grant has to be worked out and added to grants.ts first.
 */
import type { ClickHouseSettings } from '@clickhouse/client';
import type { Db, QuerySummary } from '../../src/clickhouse/client.ts';
import { engineName } from '../../src/provisioning/grants.ts';

/** System tables every user may read (ClickHouse filters their rows to what the user may see); others need a grant. */
const OPEN_SYSTEM_TABLES = new Set(['one', 'tables', 'columns', 'databases', 'settings']);

const ALTER_COMMANDS: [RegExp, string][] = [
  [/^DROP PARTITION\b/, 'ALTER DELETE'],
  [/^ADD COLUMN\b/, 'ALTER ADD COLUMN'],
  [/^MODIFY COLUMN\b/, 'ALTER MODIFY COLUMN'],
  [/^DROP COLUMN\b/, 'ALTER DROP COLUMN'],
  [/^MODIFY TTL\b/, 'ALTER TTL'],
  [/^MODIFY SETTING\b/, 'ALTER SETTINGS'],
  [/^ADD CONSTRAINT\b/, 'ALTER ADD CONSTRAINT'],
  [/^DROP CONSTRAINT\b/, 'ALTER DROP CONSTRAINT'],
  [/^MODIFY QUERY\b/, 'ALTER VIEW MODIFY QUERY'],
];

/** Privileges a statement needs. `engineOf` names the engine of a table an ATTACH brings back. */
export function privilegesOf(sql: string, engineOf: (table: string) => string): string[] {
  const text = sql.replace(/^\s*(--[^\n]*\n\s*)*/, '').trim();
  const reads = /\bSELECT\b/i.test(text) ? ['SELECT'] : [];
  const system = [...text.matchAll(/\bsystem\.(\w+)/g)].map((m) => m[1] ?? '');
  const systemGrants = [...new Set(system.filter((t) => !OPEN_SYSTEM_TABLES.has(t)))].map(
    (t) => `SELECT ON system.${t}`,
  );
  let m: RegExpExecArray | null;
  if (/^(SELECT|WITH)\b/.test(text)) {
    // A query of the open system tables alone needs no grant.
    const tables = /\bFROM\s+(?!system\.)[`\w]/.test(text) || /\bFROM\s*\(/.test(text);
    return [...(tables ? ['SELECT'] : []), ...systemGrants];
  }
  if (/^INSERT INTO\b/.test(text)) return ['INSERT', ...reads];
  if (/^DELETE FROM\b/.test(text)) return ['ALTER DELETE', ...reads];
  if ((m = /^ALTER TABLE\s+\S+\s+([\s\S]*)$/.exec(text))) {
    return m[1]!.split(/,\s*(?=[A-Z]+ [A-Z]+\b)/).map((cmd) => {
      const found = ALTER_COMMANDS.find(([re]) => re.test(cmd.trim()));
      if (!found) throw new Error(`no privilege known for ALTER ... ${cmd.slice(0, 40)}`);
      return found[1];
    });
  }
  if ((m = /^DETACH TABLE\s+(?:IF EXISTS\s+)?(\S+)$/.exec(text))) return [`DROP TABLE ON ${m[1]}`];
  if ((m = /^ATTACH TABLE\s+(?:IF NOT EXISTS\s+)?(\S+)$/.exec(text)))
    return [`CREATE TABLE ON ${m[1]}`, `TABLE ENGINE ON ${engineOf(m[1]!)}`];
  if ((m = /^CREATE TABLE (IF NOT EXISTS )?\S+[\s\S]*?\bENGINE = ([A-Za-z]+)/.exec(text))) {
    return ['CREATE TABLE', `TABLE ENGINE ON ${engineName(m[2]!)}`];
  }
  if (/^CREATE MATERIALIZED VIEW\b/.test(text)) return ['CREATE VIEW'];
  if (/^DROP VIEW\b/.test(text)) return ['DROP VIEW'];
  if (/^DROP TABLE\b/.test(text)) return ['DROP TABLE'];
  if ((m = /^TRUNCATE TABLE\s+(\S+)$/.exec(text))) return [`TRUNCATE ON ${m[1]}`];
  if ((m = /^OPTIMIZE TABLE\s+(\S+)$/.exec(text))) return [`OPTIMIZE ON ${m[1]}`];
  if (/^CREATE DATABASE\b/.test(text)) return ['CREATE DATABASE'];
  throw new Error(`no privilege known for: ${text.slice(0, 80)}`);
}

/** The privileges GRANT queries give, in the same notation (`ON db.*` is the database: bare). */
export function privilegesGranted(grants: string[]): string[] {
  return grants.flatMap((g) => {
    const m = /^GRANT ([\s\S]+?)(?: TO \S+)?$/.exec(g);
    if (!m) throw new Error(`not a GRANT: ${g}`);
    // `A, B ON x` or `TABLE ENGINE ON X, TABLE ENGINE ON Y`
    const engines = [...m[1]!.matchAll(/TABLE ENGINE ON (\w+)/g)].map((e) => `TABLE ENGINE ON ${e[1]}`);
    if (engines.length > 0) return engines;
    const on = /^([\s\S]+) ON (\S+)$/.exec(m[1]!);
    if (!on) throw new Error(`no ON in ${g}`);
    const privileges = on[1]!.split(',').map((s) => s.trim());
    return on[2]!.endsWith('.*') ? privileges : privileges.map((p) => `${p} ON ${on[2]}`);
  });
}

/**
 * A Db that runs nothing: it records every statement and answers queries
 * with `answer(sql)` (default: no rows), so code can be walked without a server.
 */
export function recordingDb(
  answer: (sql: string, params: Record<string, unknown>) => unknown[] = () => [],
): Db & { statements: string[] } {
  const statements: string[] = [];
  const none: QuerySummary = { readRows: 0, writtenRows: 0, elapsedMs: 0, memoryBytes: 0 };
  return {
    url: 'http://recording',
    statements,
    command(sql: string, _params?: Record<string, unknown>, _settings?: ClickHouseSettings) {
      statements.push(sql);
      return Promise.resolve(none);
    },
    rows<T>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
      statements.push(sql);
      return Promise.resolve(answer(sql, params ?? {}) as T[]);
    },
    ping: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
}
