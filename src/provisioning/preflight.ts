/**
 * Why one file over 300 lines: every pre-flight check shares the one-line report and the retry of unanswered requests; each check is one function.
 *
 * Pre-flight: before `migrate up` creates anything, before `run` starts, and
 * for `winnow config check`, ask the servers whether the configuration will
 * work, one check per line:
 *   - Kafka answers at source.brokers with source.auth, and source.topics exist;
 *   - ClickHouse answers at sink.url as sink.user, who holds the privileges the
 *     command needs (CHECK GRANT, evaluated by the server: roles, wildcards and
 *     partial revokes included);
 *   - every column type is one type ClickHouse knows, also where the DDL puts it;
 *   - every expression (columns[].expr, sink.partitionBy) parses as one
 *     expression and resolves over the columns it will see; sink.engine is one
 *     engine clause this ClickHouse has. The fragments travel as query
 *     parameters to formatQuerySingleLine, and the statement they will be part
 *     of must keep its shape: the same text around them, before and after.
 * A failure names the key, the value, the problem and the fix. The static
 * checks of src/config/sql-text.ts have run at load time already, so nothing
 * here interpolates text that could end a statement or hide a subquery.
 */
import type { ClickHouseSettings } from '@clickhouse/client';
import { Kafka } from 'kafkajs';
import { ClickHouseFailure, CH, type Db } from '../clickhouse/client.ts';
import { ident, quoteString } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { checkEngineText, ENGINE_FIX, PARTITION_FIX, scanSql, TYPE_FIX, EXPR_FIX } from '../config/sql-text.ts';
import { kafkaConfigFor } from '../kafka/client.ts';
import { createDatabaseGrant, grantQueries, type GrantRole } from './grants.ts';
import { columnSql } from './columns.ts';
import { upStatements } from './objects.ts';

export type CheckStatus = 'ok' | 'failed' | 'skipped';

/** The roles of README "Grants" whose commands run a pre-flight. */
export type GrantPurpose = Extract<GrantRole, 'migrate' | 'run'>;

export const GRANT_PURPOSES: Record<GrantPurpose, string> = {
  migrate: 'migrate up',
  run: 'run, check, replay and deadletters',
};

/** One privilege on one object, as CHECK GRANT takes it. */
interface GrantNeed {
  privilege: string;
  on: string;
}

/**
 * The single privileges of a GRANT query of grants.ts: `GRANT a, b ON x`, or
 * `GRANT TABLE ENGINE ON e1, TABLE ENGINE ON e2` (engine names back-quoted:
 * `Null` is a keyword).
 */
export function grantNeeds(query: string): GrantNeed[] {
  const body = query.replace(/^GRANT /, '');
  if (body.startsWith('TABLE ENGINE ON ')) {
    return body
      .split(', ')
      .map((item) => ({ privilege: 'TABLE ENGINE', on: `\`${item.replace('TABLE ENGINE ON ', '')}\`` }));
  }
  const m = /^(.*) ON (\S+)$/.exec(body);
  if (!m?.[1] || !m[2]) throw new Error(`grants.ts renders a GRANT pre-flight cannot read: ${query}`);
  const on = m[2];
  return m[1].split(', ').map((privilege) => ({ privilege, on }));
}

/**
 * The privileges of `needs` sink.user lacks, asked with CHECK GRANT; or, when this server cannot
 * CHECK GRANT (a ClickHouse error), why not: the caller says the grants are not checked.
 */
export async function missingGrants(db: Db, needs: GrantNeed[]): Promise<GrantNeed[] | { unchecked: string }> {
  const text = db.text?.bind(db);
  if (!text) throw new Error('pre-flight needs a ClickHouse client that returns statement output (Db.text)');
  try {
    const held = await Promise.all(
      needs.map(async (n) => (await text(`CHECK GRANT ${n.privilege} ON ${n.on}`)).trim() === '1'),
    );
    return needs.filter((_, i) => !held[i]);
  } catch (err) {
    if (chCode(err) === undefined) throw err;
    return { unchecked: reason(err) };
  }
}

/** `GRANT a, b ON x TO user; GRANT c ON y TO user`: what gives `user` the missing privileges. */
export function grantFix(missing: GrantNeed[], user: string): string {
  const byObject = new Map<string, string[]>();
  for (const m of missing) byObject.set(m.on, [...(byObject.get(m.on) ?? []), m.privilege]);
  const to = /^[A-Za-z_][A-Za-z0-9_]*$/.test(user) ? user : `\`${user.replaceAll('`', '``')}\``;
  return [...byObject].map(([object, privileges]) => `GRANT ${privileges.join(', ')} ON ${object} TO ${to}`).join('; ');
}

export interface Check {
  /** the key it is about, from the top of the file: pipelines[0].source.topics[1] */
  key: string;
  status: CheckStatus;
  /** ok: what holds; failed: `"value": problem (fix)`; skipped: why */
  text: string;
  /** failed because a server did not answer (it may later); a daemon starts anyway and retries */
  unreachable?: boolean;
}

export interface PreflightOptions {
  /** whose privileges to check: the statements of migrate up, of run (and check, replay), or both */
  grants: GrantPurpose[];
  /** no server is asked; every server check is reported skipped */
  offline?: boolean;
}

/** A failed check as one line: `pipelines[0].columns[0].type "UUUID": ClickHouse does not know this type (...)`. */
export function failureLine(c: Check): string {
  return `${c.key} ${c.text}`;
}

/** Settings of the probes that make ClickHouse analyse configured SQL: no writes, and a time limit. */
const PROBE = { readonly: '2', max_execution_time: 10 } as const;

const PLACEHOLDER = '__winnow_fragment';

type Add = (key: string, status: CheckStatus, text: string, unreachable?: boolean) => void;

function short(v: string, max = 60): string {
  return JSON.stringify(v.length > max ? `${v.slice(0, max - 3)}...` : v);
}

/** ClickHouse's message, short: without the code, the query it echoes, the list of expected tokens and the version. */
function reason(err: unknown): string {
  const raw =
    err instanceof ClickHouseFailure && err.cause instanceof Error ? err.cause.message : (err as Error).message;
  let m = (raw.split('\n')[0] ?? raw)
    .replace(/^Code: \d+\. /, '')
    .replace(/^DB::Exception: /, '')
    .replace(/:? in scope [\s\S]*$/i, '')
    .replace(/\. Expected one of:[\s\S]*$/, '')
    .replace(/\s*\(version [^)]*\)\s*$/, '')
    .replace(/\s*\([A-Z_]+\)\s*$/, '')
    .replace(/\. Maybe you meant: .*$/, '');
  const syntax = /^Syntax error(?: \([^)]*\))?: failed at position \d+(?: \(([^)]*)\))?/.exec(m);
  // The client cuts a message at its first "(UPPER_CASE)", taking that for the error type: the token is the type then.
  const token = syntax?.[1] ?? (err instanceof ClickHouseFailure ? (err.cause as { type?: string }).type : undefined);
  if (syntax) m = token ? `syntax error at ${JSON.stringify(token)}` : 'syntax error';
  return m.replace(/[.\s]+$/, '').slice(0, 300);
}

/** ClickHouse's own suggestions ("Maybe you meant: ['UUID']") as `did you mean UUID?`. */
function suggestion(err: unknown): string | undefined {
  const raw =
    err instanceof ClickHouseFailure && err.cause instanceof Error ? err.cause.message : (err as Error).message;
  const list = /Maybe you meant: \[([^\]]*)\]/.exec(raw)?.[1];
  const names = [...(list ?? '').matchAll(/'([^']+)'/g)].map((x) => x[1]);
  return names.length > 0 ? `did you mean ${names.join(' or ')}?` : undefined;
}

/** The network failure in words, as the client's errors give it (`connection refused (ECONNREFUSED)`). */
function unreachableReason(err: ClickHouseFailure): string {
  const words = /cannot reach ClickHouse: (.*)$/.exec(err.message)?.[1];
  return words ?? reason(err);
}

function chCode(err: unknown): number | undefined {
  return err instanceof ClickHouseFailure ? err.chCode : undefined;
}

/** Does ClickHouse's formatter read `SELECT (text)` as one statement? Returns the problem, if any. */
async function oneExpression(db: Db, text: string): Promise<string | undefined> {
  try {
    await db.rows("SELECT formatQuerySingleLine(concat('SELECT (', {e:String}, ')')) AS f", { e: text });
    return undefined;
  } catch (err) {
    if (chCode(err) === undefined) throw err;
    return `ClickHouse does not read it as one expression: ${reason(err)}`;
  }
}

/**
 * Where `text` sits in the CREATE TABLE of the final table: both statements
 * (with the value, and with a placeholder instead) formatted by ClickHouse
 * must agree outside the value's place. Returns the value as ClickHouse
 * printed it, or the problem.
 */
async function inFinalTable(
  db: Db,
  p: PipelineConfig,
  field: 'engine' | 'partitionBy',
): Promise<{ printed: string } | { problem: string }> {
  // Only this field varies: the other one neutral, every column a String (their types are checked on their own).
  const render = (value: string): string => {
    const sink =
      field === 'engine'
        ? { ...p.sink, engine: value, partitionBy: undefined }
        : { ...p.sink, engine: 'MergeTree', partitionBy: value };
    const columns = p.columns.map((c) => ({ ...c, type: 'String' }));
    const q: PipelineConfig = { ...p, columns, sink };
    const statements = upStatements(q, { createFinal: true });
    const i = statements.findIndex((s) => s.title.startsWith('final table'));
    return statements[i < 0 ? 0 : i]!.sql;
  };
  const format = async (sql: string): Promise<string> =>
    (await db.rows<{ f: string }>('SELECT formatQuerySingleLine({q:String}) AS f', { q: sql }))[0]?.f ?? '';
  const reference = await format(render(PLACEHOLDER));
  let actual: string;
  try {
    actual = await format(render(p.sink[field] ?? ''));
  } catch (err) {
    if (chCode(err) === undefined) throw err;
    return { problem: `the CREATE TABLE of the final table does not parse with it: ${reason(err)}` };
  }
  const at = reference.indexOf(PLACEHOLDER);
  const before = reference.slice(0, at);
  const after = reference.slice(at + PLACEHOLDER.length);
  if (at < 0 || !actual.startsWith(before) || !actual.endsWith(after) || actual.length < before.length + after.length) {
    return { problem: 'it changes the CREATE TABLE of the final table beyond its own place (another clause?)' };
  }
  return { printed: actual.slice(before.length, actual.length - after.length) };
}

/** The Kafka engine's columns, as the parsing view's expressions see them. */
const QUEUE_COLUMNS = [
  "CAST('' AS String) AS `_raw`",
  "CAST('' AS LowCardinality(String)) AS `_topic`",
  "CAST('' AS String) AS `_key`",
  'CAST(0 AS UInt64) AS `_offset`',
  'CAST(0 AS UInt64) AS `_partition`',
  'CAST(NULL AS Nullable(DateTime)) AS `_timestamp`',
  'CAST(NULL AS Nullable(DateTime64(3))) AS `_timestamp_ms`',
  'CAST([] AS Array(String)) AS `_headers.name`',
  'CAST([] AS Array(String)) AS `_headers.value`',
  "CAST('' AS String) AS `_raw_message`",
  "CAST('' AS String) AS `_error`",
].join(', ');

async function kafkaChecks(p: PipelineConfig, base: string, add: Add): Promise<void> {
  const source = `${base}.source`;
  const auth = p.source.auth;
  const how = auth.mechanism
    ? `${auth.protocol}, ${auth.mechanism} as ${JSON.stringify(auth.username)}`
    : auth.protocol;
  let admin;
  try {
    admin = new Kafka({ ...kafkaConfigFor(p), retry: { retries: 1 } }).admin();
  } catch (err) {
    add(
      `${source}.tls.ca`,
      'failed',
      `${short(p.source.tls?.ca ?? '')}: cannot read it: ${(err as Error).message} (give a readable PEM file)`,
    );
    return;
  }
  let topics: Set<string>;
  try {
    await admin.connect();
    topics = new Set(await admin.listTopics());
  } catch (err) {
    const e = err as Error & { type?: string; cause?: Error };
    const brokers = short(p.source.brokers.join(','));
    if (e.name === 'KafkaJSSASLAuthenticationError') {
      add(
        `${source}.auth.password`,
        'failed',
        `(of ${JSON.stringify(auth.username)}): Kafka refused the login: ${e.message}` +
          ' (check source.auth.username and source.auth.password)',
      );
    } else if (e.name === 'KafkaJSProtocolError' && /SASL/.test(e.type ?? '')) {
      add(
        `${source}.auth.protocol`,
        'failed',
        `"${auth.protocol}": ${brokers} ${e.message.toLowerCase()}` +
          ' (check source.auth.protocol, source.auth.mechanism and the port in source.brokers)',
      );
    } else if (e.name === 'KafkaJSConnectionClosedError') {
      add(
        `${source}.auth.protocol`,
        'failed',
        `"${auth.protocol}": ${brokers} closed the connection` +
          ' (a listener for another protocol? check source.auth.protocol and the port in source.brokers)',
      );
    } else {
      const cause = e.cause?.message ?? e.message;
      add(
        `${source}.brokers`,
        'failed',
        `${brokers}: cannot reach Kafka: ${cause} (check source.brokers and that Kafka listens there)`,
        true,
      );
    }
    return;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  add(`${source}.brokers`, 'ok', `${short(p.source.brokers.join(','))}: Kafka answers (${how})`);
  p.source.topics.forEach((t, i) => {
    if (topics.has(t)) add(`${source}.topics[${i}]`, 'ok', `${short(t)}: the topic exists`);
    else
      add(
        `${source}.topics[${i}]`,
        'failed',
        `${short(t)}: no such topic on ${short(p.source.brokers.join(','))} (create it, or correct source.topics)`,
      );
  });
}

/** Returns false when ClickHouse does not answer (then nothing else is asked). */
async function clickhouseCheck(db: Db, p: PipelineConfig, base: string, add: Add): Promise<boolean> {
  try {
    const [r] = await db.rows<{ v: string; u: string }>('SELECT version() AS v, currentUser() AS u');
    add(
      `${base}.sink.url`,
      'ok',
      `${short(p.sink.url)}: ClickHouse ${r?.v ?? '?'} answers as ${JSON.stringify(r?.u ?? p.sink.user)}`,
    );
    return true;
  } catch (err) {
    const code = chCode(err);
    if (code === CH.AUTHENTICATION_FAILED || code === CH.REQUIRED_PASSWORD) {
      add(
        `${base}.sink.password`,
        'failed',
        `(of ${JSON.stringify(p.sink.user)}): ClickHouse refused the login: ${reason(err)}` +
          ' (check sink.user and sink.password)',
      );
    } else if (
      err instanceof ClickHouseFailure &&
      (err.netCode !== undefined || (code === undefined && err.retryable))
    ) {
      add(
        `${base}.sink.url`,
        'failed',
        `${short(p.sink.url)}: cannot reach ClickHouse: ${unreachableReason(err)}` +
          ' (check sink.url and that ClickHouse listens there)',
        true,
      );
    } else {
      add(
        `${base}.sink.url`,
        'failed',
        `${short(p.sink.url)}: ClickHouse did not answer as expected: ${reason(err)} (check sink.url)`,
      );
    }
    return false;
  }
}

async function grantChecks(db: Db, p: PipelineConfig, base: string, purposes: GrantPurpose[], add: Add): Promise<void> {
  const user = p.sink.user;
  for (const purpose of purposes) {
    const queries = grantQueries(purpose, p);
    if (purpose === 'migrate') {
      // migrate up creates the database only when it is missing
      const [exists] = await db.rows<{ n: string }>(
        'SELECT count() AS n FROM system.databases WHERE name = {db:String}',
        {
          db: p.sink.database,
        },
      );
      if (Number(exists?.n ?? 0) === 0) queries.unshift(createDatabaseGrant(p));
    }
    const needs = queries.flatMap(grantNeeds);
    const missing = await missingGrants(db, needs);
    if (!Array.isArray(missing)) {
      add(
        `${base}.sink.user`,
        'skipped',
        `${short(user)}: this ClickHouse cannot CHECK GRANT (${missing.unchecked});` +
          ` the grants of ${GRANT_PURPOSES[purpose]} are not checked`,
      );
      continue;
    }
    const names = (list: GrantNeed[]): string => [...new Set(list.map((n) => n.privilege))].join(', ');
    if (missing.length === 0) {
      add(
        `${base}.sink.user`,
        'ok',
        `${short(user)}: holds the grants for ${GRANT_PURPOSES[purpose]} (${names(needs)})`,
      );
    } else {
      const list = missing.map((m) => `${m.privilege} ON ${m.on}`).join(', ');
      add(
        `${base}.sink.user`,
        'failed',
        `${short(user)}: lacks ${list}, needed for ${GRANT_PURPOSES[purpose]}` +
          ` (${grantFix(missing, user)}; see README "Grants")`,
      );
    }
  }
}

/** One column's type; true when ClickHouse accepts it. */
async function typeCheck(db: Db, type: string, key: string, add: Add): Promise<boolean> {
  const typeName = async (t: string): Promise<string> =>
    (await db.rows<{ n: string }>('SELECT toTypeName(defaultValueOfTypeName({t:String})) AS n', { t }))[0]?.n ?? '';
  let name: string;
  try {
    name = await typeName(type);
  } catch (err) {
    const code = chCode(err);
    if (code === undefined) throw err;
    if (code === 50) {
      add(key, 'failed', `${short(type)}: ClickHouse does not know this type (${suggestion(err) ?? TYPE_FIX})`);
    } else {
      add(key, 'failed', `${short(type)}: ClickHouse refuses this type: ${reason(err)} (${TYPE_FIX})`);
    }
    return false;
  }
  // Where the DDL puts it: one column whose type reads the same as the type alone.
  const prefix = 'CREATE TABLE t (`c` ';
  const suffix = ') ENGINE = Memory';
  let printed = '';
  try {
    const [r] = await db.rows<{ f: string }>(
      "SELECT formatQuerySingleLine(concat('CREATE TABLE t (c ', {t:String}, ') ENGINE = Memory')) AS f",
      { t: type },
    );
    printed = r?.f ?? '';
  } catch (err) {
    if (chCode(err) === undefined) throw err;
  }
  const inner =
    printed.startsWith(prefix) && printed.endsWith(suffix) ? printed.slice(prefix.length, -suffix.length) : '';
  const one = inner !== '' && Array.isArray(scanSql(inner)) && (await typeName(inner).catch(() => '')) === name;
  if (!one) {
    add(
      key,
      'failed',
      `${short(type)}: in a column definition ClickHouse reads more than the type ${name} (${TYPE_FIX})`,
    );
    return false;
  }
  add(key, 'ok', `${short(type)}: ClickHouse type ${name.replace(/\(\s+/g, '(').replace(/\s+/g, ' ')}`);
  return true;
}

/** One column's expr; `typeOk`: its type passed (the value expression casts to it). */
async function exprCheck(
  db: Db,
  p: PipelineConfig,
  index: number,
  typeOk: boolean,
  key: string,
  add: Add,
): Promise<void> {
  const col = p.columns[index]!;
  if (col.source.kind !== 'expr') return;
  const expr = col.source.expr;
  const shape = await oneExpression(db, expr);
  if (shape) {
    add(key, 'failed', `${short(expr)}: ${shape} (${EXPR_FIX})`);
    return;
  }
  if (!typeOk) {
    add(key, 'skipped', `${short(expr)}: one expression; not resolved, as the column's type failed`);
    return;
  }
  try {
    // The value expression the parsing view computes, over the Kafka engine's columns.
    await db.rows(`EXPLAIN QUERY TREE SELECT ${columnSql(col).value} AS v FROM (SELECT ${QUEUE_COLUMNS})`, {}, PROBE);
  } catch (err) {
    if (chCode(err) === undefined) throw err;
    add(key, 'failed', `${short(expr)}: ${reason(err)} (${suggestion(err) ?? EXPR_FIX})`);
    return;
  }
  add(key, 'ok', `${short(expr)}: one expression over the message`);
}

async function engineCheck(db: Db, p: PipelineConfig, base: string, add: Add): Promise<void> {
  const key = `${base}.sink.engine`;
  const engine = p.sink.engine;
  const placed = await inFinalTable(db, p, 'engine');
  if ('problem' in placed) {
    add(key, 'failed', `${short(engine)}: ${placed.problem} (${ENGINE_FIX})`);
    return;
  }
  const problem = checkEngineText(placed.printed);
  if (problem) {
    add(
      key,
      'failed',
      `${short(engine)}: ClickHouse reads ${short(placed.printed)}: ${problem.problem} (${problem.fix})`,
    );
    return;
  }
  const name = /^[A-Za-z]+/.exec(placed.printed)?.[0] ?? '';
  const known = await db.rows<{ name: string }>('SELECT name FROM system.table_engines WHERE name = {n:String}', {
    n: name,
  });
  if (known.length === 0) {
    add(key, 'failed', `${short(engine)}: this ClickHouse has no table engine ${name} (${ENGINE_FIX})`);
    return;
  }
  add(key, 'ok', `${short(engine)}: one ${name} engine clause`);
}

async function partitionCheck(db: Db, p: PipelineConfig, base: string, typesOk: boolean, add: Add): Promise<void> {
  const partitionBy = p.sink.partitionBy;
  if (partitionBy === undefined) return;
  const key = `${base}.sink.partitionBy`;
  const placed = await inFinalTable(db, p, 'partitionBy');
  const problem =
    'problem' in placed
      ? placed.problem
      : !Array.isArray(scanSql(placed.printed))
        ? 'ClickHouse reads more than one expression there'
        : await oneExpression(db, placed.printed);
  if (problem) {
    add(key, 'failed', `${short(partitionBy)}: ${problem} (${PARTITION_FIX})`);
    return;
  }
  if (!typesOk) {
    add(key, 'skipped', `${short(partitionBy)}: one expression; not resolved, as a column type failed`);
    return;
  }
  // Over the final table's columns, as the table's partition key will see them.
  const columns = p.columns.map((c) => `defaultValueOfTypeName(${quoteString(c.type)}) AS ${ident(c.name)}`).join(', ');
  try {
    await db.rows(`EXPLAIN QUERY TREE SELECT ${partitionBy} FROM (SELECT ${columns})`, {}, PROBE);
  } catch (err) {
    if (chCode(err) === undefined) throw err;
    add(key, 'failed', `${short(partitionBy)}: ${reason(err)} (${suggestion(err) ?? PARTITION_FIX})`);
    return;
  }
  add(key, 'ok', `${short(partitionBy)}: one expression over the columns`);
}

/**
 * Every check of one pipeline (`index` is its place in the file). Server
 * checks that cannot run (offline, or a server that did not answer) are
 * reported skipped; only `failed` checks fail.
 */
export async function preflight(
  p: PipelineConfig,
  index: number,
  server: Db,
  opts: PreflightOptions,
): Promise<Check[]> {
  const db = retrying(server);
  const base = `pipelines[${index}]`;
  const out: Check[] = [];
  const add: Add = (key, status, text, unreachable) => {
    out.push({ key, status, text, ...(unreachable ? { unreachable } : {}) });
  };
  add(
    base,
    'ok',
    `${short(p.name)}: the configuration is valid;` +
      ' its trusted SQL (type, expr, sink.engine, sink.partitionBy) is well-formed',
  );
  if (opts.offline) {
    add(`${base}.source`, 'skipped', 'Kafka: not asked (--offline)');
    add(`${base}.sink`, 'skipped', 'ClickHouse: not asked (--offline)');
    return out;
  }
  await kafkaChecks(p, base, add);
  if (!(await clickhouseCheck(db, p, base, add))) {
    add(`${base}.sink`, 'skipped', 'grants, types and SQL fragments: ClickHouse did not answer');
    return out;
  }
  try {
    await grantChecks(db, p, base, opts.grants, add);
    const typeOk: boolean[] = [];
    for (const [i, c] of p.columns.entries())
      typeOk.push(await typeCheck(db, c.type, `${base}.columns[${i}].type`, add));
    for (const i of p.columns.keys()) await exprCheck(db, p, i, typeOk[i]!, `${base}.columns[${i}].expr`, add);
    if (p.sink.mode === 'create') {
      await engineCheck(db, p, base, add);
      await partitionCheck(db, p, base, typeOk.every(Boolean), add);
    }
  } catch (err) {
    // Only a request that got no answer from ClickHouse (its own errors are checks) lands here.
    if (!(err instanceof ClickHouseFailure) || chCode(err) !== undefined) throw err;
    const problem = err.netCode !== undefined ? unreachableReason(err) : reason(err);
    add(
      `${base}.sink.url`,
      'failed',
      `${short(p.sink.url)}: ClickHouse stopped answering: ${problem} (try again)`,
      true,
    );
  }
  return out;
}

/**
 * The pre-flight's requests, each tried up to three times while ClickHouse
 * does not answer (a connection reset, say): they only read, so a retry is safe.
 */
function retrying(db: Db): Db {
  const again = async <T>(request: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request();
      } catch (err) {
        if (attempt >= 3 || !(err instanceof ClickHouseFailure) || !err.retryable) throw err;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  };
  return {
    url: db.url,
    command: (sql, params, settings) => again(() => db.command(sql, params, settings)),
    rows: <T>(sql: string, params?: Record<string, unknown>, settings?: ClickHouseSettings) =>
      again(() => db.rows<T>(sql, params, settings)),
    ...(db.text ? { text: (sql, params, settings) => again(() => db.text!(sql, params, settings)) } : {}),
    ping: () => db.ping(),
    close: () => db.close(),
  };
}
