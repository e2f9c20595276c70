/**
 * Why one file over 300 lines: the comparison and the plan of in-place steps decide together what `migrate up` may do; the CREATE parser is in create-query.ts.
 *
 * Drift: how a pipeline's objects in ClickHouse differ from what the live
 * builders (objects.ts) build from its configuration at the latest version,
 * object by object, and what `migrate up` does about it.
 *
 * What exists is read from system.tables (create_table_query); what the
 * configuration wants is the builders' CREATE, formatted by the same server
 * (formatQuerySingleLine), so both come out of one formatter. Compared are the
 * columns (types normalised by ClickHouse: Int is Int32), the table clauses
 * (ENGINE, PARTITION BY, ORDER BY, TTL, ...), the settings (all of the Kafka
 * queue's, both ways; of other tables those the builders set), and a view's
 * target and query. ClickHouse shows secrets as [HIDDEN]: of
 * kafka_sasl_password only whether it is set can be compared, and the plan says so.
 *
 * Safe in place: the Kafka source (the queue's settings: brokers, topics,
 * auth, group, consumers), by recreating the queue and its parsing view the
 * way 0009 does (consumption stops first, the parsing view comes back last;
 * the engine commits offsets only after its views wrote a block, so staging,
 * dead letters, seen keys, the final table and the group's offsets stay); the
 * parsing rules of columns (the parsing view again); added columns (ALTER
 * TABLE ... ADD COLUMN where the builders put them, and the views that list
 * columns get their new query by ALTER TABLE ... MODIFY QUERY, atomically: a
 * slice never meets a half-changed dedup path); a MergeTree setting the
 * builders set (the deduplication window: MODIFY SETTING); a missing object
 * (created as the builders build it). Everything else is refused with the difference and
 * the way to make it.
 */
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified, quoteString } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import {
  literalText,
  parseCreateQuery,
  selectParts,
  type ColumnDef,
  type CreateQuery,
  type SelectItem,
} from './create-query.ts';
import {
  CHECKS_TABLE,
  latestStatements,
  LEASES_TABLE,
  objectNames,
  REPAIRS_TABLE,
  REPLAYS_TABLE,
  SLICES_TABLE,
  type Statement,
} from './objects.ts';

export type Role =
  | 'final'
  | 'staging'
  | 'errors'
  | 'seen'
  | 'seenKv'
  | 'kept'
  | 'keptToFinalMv'
  | 'keptToSeenMv'
  | 'keptToSeenKvMv'
  | 'parsed'
  | 'errorsMv'
  | 'stagingMv'
  | 'queue'
  | 'parsedMv'
  | 'repairFinal'
  | 'repairSeen'
  | 'shared';

/** What `migrate up` does about a difference. */
export type Fix =
  /** nothing: it is harmless (an adopted or created final table's extra column, say) */
  | 'none'
  /** recreate the Kafka queue and its parsing view */
  | 'source'
  /** recreate the parsing view */
  | 'parse'
  /** ALTER TABLE ... ADD COLUMN */
  | 'add-column'
  /** ALTER TABLE <view> MODIFY QUERY */
  | 'modify-query'
  /** ALTER TABLE ... MODIFY SETTING */
  | 'setting'
  | 'refuse';

export interface Difference {
  /** what differs, safe to print (secrets masked): `kafka_broker_list 'a:1' -> 'b:1'`, `column email String added` */
  text: string;
  fix: Fix;
  /** the configuration key behind a refused difference, when it is known */
  cause?: string;
  /** add-column: the column */
  column?: string;
  /** setting: the name and the value to set */
  setting?: [string, string];
}

export interface ObjectDrift {
  name: string;
  role: Role;
  /** as the builders call it: `Kafka queue winnow_users_queue` */
  title: string;
  state: 'unchanged' | 'differs' | 'missing';
  /** what differs and needs something done (or refused) */
  differences: Difference[];
  /** what was not compared, or differs harmlessly */
  notes: string[];
}

/** One step of the in-place changes: a statement, or an operation on the Kafka consumer group. */
export type Step =
  | { kind: 'sql'; title: string; sql: string; display: string }
  /**
   * A changed consumer group takes the old one's committed offsets: first
   * while the old queue still consumes (a failure then changes nothing; a few
   * messages may be read twice, and re-delivered coordinates count once), then
   * (`again`) once its consumers left, the final ones.
   */
  | { kind: 'copy-group'; title: string; from: string; to: string; topics: string[]; again: boolean }
  | { kind: 'seed-latest'; title: string; group: string; topics: string[] };

export interface ChangePlan {
  steps: Step[];
  /** the refused differences, each with its object's title */
  refused: (Difference & { object: string })[];
}

const PASSWORD = /password|secret/i;
/** Clauses whose difference on the final table is a different table. */
const FINAL_CLAUSES: Record<string, string> = {
  ENGINE: 'sink.engine',
  'PARTITION BY': 'sink.partitionBy',
  'ORDER BY': 'sink.orderBy, dedup.key unless set',
};
const DEDUP_WINDOW = 'non_replicated_deduplication_window';

interface Wanted {
  name: string;
  role: Role;
  title: string;
  statement?: Statement;
}

function objectName(sql: string): string {
  const m = /^CREATE (?:TABLE|MATERIALIZED VIEW) IF NOT EXISTS `[^`]+`\.`([^`]+)`/.exec(sql);
  if (!m?.[1]) throw new Error(`drift: cannot name the object of ${sql.slice(0, 80)}`);
  return m[1];
}

function roles(p: PipelineConfig): Map<string, Role> {
  const n = objectNames(p);
  const out = new Map<string, Role>([
    [n.final, 'final'],
    [n.staging, 'staging'],
    [n.errors, 'errors'],
    [n.seen, 'seen'],
    [n.seenKv, 'seenKv'],
    [n.kept, 'kept'],
    [n.keptToFinalMv, 'keptToFinalMv'],
    [n.keptToSeenMv, 'keptToSeenMv'],
    [n.keptToSeenKvMv, 'keptToSeenKvMv'],
    [n.parsed, 'parsed'],
    [n.errorsMv, 'errorsMv'],
    [n.stagingMv, 'stagingMv'],
    [n.queue, 'queue'],
    [n.parsedMv, 'parsedMv'],
    [n.repairFinal, 'repairFinal'],
    [n.repairSeen, 'repairSeen'],
  ]);
  for (const t of [SLICES_TABLE, LEASES_TABLE, REPLAYS_TABLE, CHECKS_TABLE, REPAIRS_TABLE]) out.set(t, 'shared');
  return out;
}

/** Every object of the pipeline at the latest version, in creation order, with the builders' statement. */
export function wantedObjects(p: PipelineConfig, kafkaPassword: string | undefined): Wanted[] {
  const role = roles(p);
  const statements = latestStatements(p, {
    createFinal: true,
    ...(kafkaPassword === undefined ? {} : { kafkaPassword }),
  });
  // Objects are compared by their CREATE; the ALTERs among the latest
  // statements (the pipeline's lease-protocol constraint) are not objects.
  return statements
    .filter((s) => s.sql.startsWith('CREATE '))
    .map((s) => {
      const name = objectName(s.sql);
      const r = role.get(name) ?? 'shared';
      // An adopted final table is the user's: it is compared with the columns only, and never created.
      if (r === 'final' && p.sink.mode === 'adopt') return { name, role: r, title: `final table ${name} (adopted)` };
      return { name, role: r, title: s.title, statement: s };
    });
}

/** Types as ClickHouse prints them, asked of the server (Int -> Int32); a type it cannot read stays as written. */
export async function normaliseTypes(db: Db, types: string[]): Promise<Map<string, string>> {
  const distinct = [...new Set(types)];
  const out = new Map<string, string>();
  const ask = async (list: string[]): Promise<void> => {
    const cols = list.map(
      (t, i) => `toTypeName(CAST(defaultValueOfTypeName(${quoteString(t)}), ${quoteString(t)})) AS t${i}`,
    );
    const [row] = await db.rows<Record<string, string>>(`SELECT ${cols.join(', ')}`);
    list.forEach((t, i) => out.set(t, row?.[`t${i}`] ?? t));
  };
  if (distinct.length === 0) return out;
  try {
    await ask(distinct);
  } catch {
    for (const t of distinct) await ask([t]).catch(() => out.set(t, t));
  }
  return out;
}

/** The builders' statements as the server formats them, one line each. */
async function formatted(db: Db, sqls: string[]): Promise<string[]> {
  if (sqls.length === 0) return [];
  const cols = sqls.map((s, i) => `formatQuerySingleLine(${quoteString(s)}) AS f${i}`);
  const [row] = await db.rows<Record<string, string>>(`SELECT ${cols.join(', ')}`);
  return sqls.map((_s, i) => row?.[`f${i}`] ?? '');
}

/** Compares every object of the pipeline in ClickHouse with what its configuration builds. */
export async function inspect(db: Db, p: PipelineConfig, kafkaPassword: string | undefined): Promise<ObjectDrift[]> {
  const wanted = wantedObjects(p, kafkaPassword);
  const live = new Map(
    (
      await db.rows<{ name: string; q: string }>(
        'SELECT name, create_table_query AS q FROM system.tables' +
          ' WHERE database = {db:String} AND name IN {names:Array(String)}',
        // The seen-key index too when the configuration does not want it: it tells a change of dedup.index.
        { db: p.sink.database, names: [...wanted.map((w) => w.name), objectNames(p).seenKv] },
      )
    ).map((r) => [r.name, parseCreateQuery(r.q)]),
  );
  // The display text: the Kafka password as '***', so it never reaches the server's query log.
  const built = wanted.filter((w) => w.statement !== undefined);
  const texts = await formatted(
    db,
    built.map((w) => w.statement!.display),
  );
  const want = new Map(built.map((w, i) => [w.name, parseCreateQuery(texts[i]!)]));
  const types = await normaliseTypes(db, [
    ...[...want.values(), ...live.values()].flatMap((q) => (q?.kind === 'table' ? q.columns.map((c) => c.type) : [])),
    ...p.columns.map((c) => c.type),
  ]);
  const index = indexChange(p, live);
  return wanted.map((w): ObjectDrift => {
    const have = live.get(w.name);
    const own = index && w.role === index.role ? [index.difference] : [];
    if (!have) {
      const state = own.length > 0 ? 'differs' : 'missing';
      return { name: w.name, role: w.role, title: w.title, state, differences: own, notes: [] };
    }
    const found = compareObject(p, w.role, want.get(w.name), have, (t) => types.get(t) ?? t);
    const differences = [...own, ...found.filter((d) => d.fix !== 'none')];
    const notes = [...found.filter((d) => d.fix === 'none').map((d) => d.text), ...secretNotes(w.role, have)];
    return {
      name: w.name,
      role: w.role,
      title: w.title,
      state: differences.length > 0 ? 'differs' : 'unchanged',
      differences,
      notes,
    };
  });
}

/**
 * A changed `dedup.index` on a pipeline that has seen keys: an index built now
 * would be empty (every kept key would pass again), and one left behind goes
 * stale (wrong if switched back). Refused; migrate down and up starts over.
 */
function indexChange(
  p: PipelineConfig,
  live: Map<string, CreateQuery>,
): { role: Role; difference: Difference } | undefined {
  const n = objectNames(p);
  const hasSeen = live.has(n.seen);
  const hasKv = live.has(n.seenKv);
  if (p.dedup.index === 'rocksdb' && hasSeen && !hasKv) {
    const text = 'dedup.index scan -> rocksdb: the seen keys exist without their index, which cannot be built in place';
    return { role: 'seenKv', difference: { text, fix: 'refuse', cause: 'dedup.index' } };
  }
  if (p.dedup.index === 'scan' && hasKv) {
    const text = `dedup.index rocksdb -> scan: the seen-key index ${n.seenKv} exists and would go stale`;
    return { role: 'seen', difference: { text, fix: 'refuse', cause: 'dedup.index' } };
  }
  return undefined;
}

function secretNotes(role: Role, have: CreateQuery): string[] {
  if (role !== 'queue') return [];
  return [...have.settings.keys()]
    .filter((k) => PASSWORD.test(k))
    .map((k) => `${k} is not compared: ClickHouse hides secrets (only whether it is set is)`);
}

function show(value: string | undefined, name: string): string {
  if (value === undefined) return '(none)';
  return PASSWORD.test(name) ? "'***'" : value;
}

/** The differences of one object; `want` is undefined for an adopted final table (compared with the columns only). */
export function compareObject(
  p: PipelineConfig,
  role: Role,
  want: CreateQuery | undefined,
  have: CreateQuery,
  type: (t: string) => string,
): Difference[] {
  if (!want) return compareAdopted(p, have, type);
  if (want.kind === 'view' || have.kind === 'view') return compareView(role, want, have);
  return [
    ...compareColumns(p, role, want, have, type),
    ...compareClauses(role, want, have),
    ...compareSettings(role, want, have),
  ];
}

function compareAdopted(p: PipelineConfig, have: CreateQuery, type: (t: string) => string): Difference[] {
  const out: Difference[] = [];
  const cols = new Map(have.columns.map((c) => [c.name, type(c.type)]));
  for (const c of p.columns) {
    const t = cols.get(c.name);
    const w = type(c.type);
    if (t === undefined) {
      const table = qualified(p.sink.database, p.sink.table);
      const hint = `add it to the table: ALTER TABLE ${table} ADD COLUMN ${ident(c.name)} ${c.type}`;
      out.push({ text: `column ${c.name} ${w} missing`, fix: 'refuse', cause: hint });
    } else if (t !== w)
      out.push({ text: `column ${c.name}: ${t} -> ${w}`, fix: 'refuse', cause: `columns: the type of ${c.name}` });
  }
  for (const c of have.columns) {
    if (!p.columns.some((x) => x.name === c.name))
      out.push({ text: `extra column ${c.name} ${c.type} (not configured; gets its default)`, fix: 'none' });
  }
  out.push(...finalDedupWindow(have));
  return out;
}

/** A created or adopted final table must keep block ids (insert deduplication); MergeTree keeps none by default. */
function finalDedupWindow(have: CreateQuery): Difference[] {
  const engine = have.clauses.get('ENGINE') ?? '';
  if (engine.startsWith('Replicated') || !/MergeTree/.test(engine)) return [];
  const v = have.settings.get(DEDUP_WINDOW);
  if (v !== undefined && Number(v) > 0) return [];
  return [
    {
      text: `setting ${DEDUP_WINDOW} ${show(v, DEDUP_WINDOW)} -> 10000 (re-run slices are recognised)`,
      fix: 'setting',
      setting: [DEDUP_WINDOW, '10000'],
    },
  ];
}

const ALTERABLE: ReadonlySet<Role> = new Set(['final', 'staging', 'kept', 'parsed', 'repairFinal']);
const KEYED: ReadonlySet<Role> = new Set(['seen', 'repairSeen', 'keptToSeenMv', 'keptToSeenKvMv']);

function compareColumns(
  p: PipelineConfig,
  role: Role,
  want: CreateQuery,
  have: CreateQuery,
  type: (t: string) => string,
): Difference[] {
  const out: Difference[] = [];
  const configured = new Set(p.columns.map((c) => c.name));
  const haveBy = new Map(have.columns.map((c) => [c.name, c]));
  const wantBy = new Map(want.columns.map((c) => [c.name, c]));
  const keyCause = KEYED.has(role) ? 'dedup.key' : undefined;
  const changed = (c: string): Difference['cause'] =>
    keyCause ?? (configured.has(c) ? `columns: the type of ${c}` : undefined);
  for (const w of want.columns) {
    const h = haveBy.get(w.name);
    if (!h) {
      const text = `column ${w.name} ${type(w.type)} added`;
      if (role === 'queue') out.push({ text, fix: 'source' });
      else if (ALTERABLE.has(role) && configured.has(w.name) && w.rest === '')
        out.push({ text, fix: 'add-column', column: w.name });
      else out.push({ text, fix: 'refuse', ...cause(keyCause) });
    } else if (type(h.type) !== type(w.type)) {
      out.push({
        text: `column ${w.name}: ${type(h.type)} -> ${type(w.type)}`,
        fix: role === 'queue' ? 'source' : 'refuse',
        ...cause(changed(w.name)),
      });
    } else if (h.rest !== w.rest) {
      out.push({
        text: `column ${w.name}: ${h.rest || '(plain)'} -> ${w.rest || '(plain)'}`,
        fix: role === 'queue' ? 'source' : 'refuse',
      });
    }
  }
  for (const h of have.columns) {
    if (wantBy.has(h.name)) continue;
    if (role === 'final')
      out.push({ text: `extra column ${h.name} ${h.type} (not configured; gets its default)`, fix: 'none' });
    else if (role === 'queue') out.push({ text: `column ${h.name} removed`, fix: 'source' });
    else out.push({ text: `column ${h.name} removed`, fix: 'refuse', cause: keyCause ?? `columns: ${h.name} removed` });
  }
  const sameSet = want.columns.length === have.columns.length && want.columns.every((c) => haveBy.has(c.name));
  if (sameSet && want.columns.some((c, i) => have.columns[i]?.name !== c.name)) {
    out.push({ text: 'column order differs from the configuration (harmless, left as it is)', fix: 'none' });
  }
  // The shared leases table carries one lease-protocol constraint per pipeline
  // (0010, leaseProtocolStatement), added by ALTER: not part of its CREATE.
  const haveElements =
    role === 'shared' ? have.elements.filter((e) => !/^CONSTRAINT `?lease_protocol_/.test(e)) : have.elements;
  if (role !== 'final' && want.elements.join() !== haveElements.join()) {
    out.push({
      text: `indexes or constraints: ${list(haveElements)} -> ${list(want.elements)}`,
      fix: 'refuse',
    });
  }
  return out;
}

function list(items: string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}

function cause(c: string | undefined): { cause?: string } {
  return c === undefined ? {} : { cause: c };
}

function clauseCause(role: Role, clause: string): string | undefined {
  if (role === 'seen' || role === 'repairSeen' || role === 'repairFinal') {
    if (clause === 'ORDER BY') return 'dedup.key';
    if (clause === 'PARTITION BY' || clause === 'TTL') return 'dedup.window';
  }
  if ((role === 'staging' || role === 'errors') && clause === 'TTL') return 'dedup.window (retention)';
  if (role === 'seenKv' && clause === 'ENGINE') return 'dedup.window';
  return undefined;
}

/** `MergeTree()` is `MergeTree`; a Replicated engine's arguments are compared by name only (macros expand). */
function engineOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = text.replace(/\(\)$/, '');
  return t.startsWith('Replicated') ? t.replace(/\(.*$/s, '') : t;
}

function compareClauses(role: Role, want: CreateQuery, have: CreateQuery): Difference[] {
  const out: Difference[] = [];
  const names = new Set([...want.clauses.keys(), ...have.clauses.keys()]);
  for (const clause of names) {
    if (role === 'final' && !(clause in FINAL_CLAUSES)) continue;
    let w = want.clauses.get(clause);
    let h = have.clauses.get(clause);
    if (clause === 'ENGINE') [w, h] = [engineOf(w), engineOf(h)];
    if (w === h) continue;
    const text = `${clause} ${h ?? '(none)'} -> ${w ?? '(none)'}`;
    if (role === 'queue') out.push({ text, fix: 'source' });
    else
      out.push({ text, fix: 'refuse', ...cause(role === 'final' ? FINAL_CLAUSES[clause] : clauseCause(role, clause)) });
  }
  return out;
}

function compareSettings(role: Role, want: CreateQuery, have: CreateQuery): Difference[] {
  if (role === 'final') return finalDedupWindow(have);
  const out: Difference[] = [];
  // The queue's every setting both ways; another table's only those the builders set (the server adds its defaults).
  const names =
    role === 'queue' ? new Set([...want.settings.keys(), ...have.settings.keys()]) : new Set(want.settings.keys());
  for (const name of names) {
    const w = want.settings.get(name);
    const h = have.settings.get(name);
    const same = PASSWORD.test(name)
      ? (w === undefined) === (h === undefined)
      : w !== undefined && h !== undefined && literalText(w) === literalText(h);
    if (same || (w === undefined && h === undefined)) continue;
    const text = `${name} ${show(h, name)} -> ${show(w, name)}`;
    // A MergeTree setting the builders set (the deduplication window) is set again in place.
    if (role === 'queue') out.push({ text, fix: 'source' });
    else if (w !== undefined && /MergeTree/.test(have.clauses.get('ENGINE') ?? '')) {
      out.push({ text, fix: 'setting', setting: [name, w] });
    } else out.push({ text, fix: 'refuse' });
  }
  return out;
}

/** `SELECT adds email; changes name` from the items of two queries (and of a subquery in their FROM). */
function describeSelect(want: string, have: string): string {
  const w = selectParts(want);
  const h = selectParts(have);
  const parts: string[] = [];
  const items = (a: SelectItem[], b: SelectItem[], label: (n: string) => string): void => {
    const bBy = new Map(b.map((i) => [i.name, i.expr]));
    const aBy = new Map(a.map((i) => [i.name, i.expr]));
    const added = a.filter((i) => !bBy.has(i.name)).map((i) => label(i.name));
    const dropped = b.filter((i) => !aBy.has(i.name)).map((i) => label(i.name));
    const changed = a.filter((i) => bBy.has(i.name) && bBy.get(i.name) !== i.expr).map((i) => label(i.name));
    if (added.length > 0) parts.push(`adds ${added.join(', ')}`);
    if (dropped.length > 0) parts.push(`drops ${dropped.join(', ')}`);
    if (changed.length > 0) parts.push(`changes ${changed.join(', ')}`);
  };
  items(w.items, h.items, (n) => n);
  if (w.subquery !== undefined && h.subquery !== undefined) {
    items(selectParts(w.subquery).items, selectParts(h.subquery).items, (n) =>
      n.startsWith('__v_') ? `the parsing of ${n.slice(4)}` : n,
    );
  }
  return parts.length > 0 ? `SELECT ${[...new Set(parts)].join('; ')}` : 'SELECT differs';
}

/** The `__t` item of the parsing view: the dedup time. */
function timeItem(select: string): string | undefined {
  return selectParts(select).items.find((i) => i.name === '__t')?.expr;
}

function compareView(role: Role, want: CreateQuery, have: CreateQuery): Difference[] {
  const out: Difference[] = [];
  if (want.kind !== have.kind) return [{ text: `a ${have.kind}, not a ${want.kind}`, fix: 'refuse' }];
  if (want.to !== have.to)
    out.push({
      text: `TO ${have.to ?? '(none)'} -> ${want.to ?? '(none)'}`,
      fix: role === 'parsedMv' ? 'parse' : 'refuse',
    });
  if ((want.select ?? '') === (have.select ?? '')) return out;
  const text = describeSelect(want.select ?? '', have.select ?? '');
  if (role === 'parsedMv') {
    const [tw, th] = [timeItem(want.select ?? ''), timeItem(have.select ?? '')];
    if (tw !== th)
      out.push({
        text: `the dedup time __t: ${th ?? '(none)'} -> ${tw ?? '(none)'}`,
        fix: 'refuse',
        cause: 'dedup.time',
      });
    else out.push({ text, fix: 'parse' });
  } else if (role === 'stagingMv' || role === 'errorsMv' || role === 'keptToFinalMv')
    out.push({ text, fix: 'modify-query' });
  else out.push({ text, fix: 'refuse', ...cause(KEYED.has(role) ? 'dedup.key' : undefined) });
  return out;
}

/** Refused differences, the most fundamental first: the one line of a refusal names it. */
const CAUSE_RANK = [
  /^dedup\.key/,
  /^dedup\.window/,
  /^dedup\.time/,
  /^dedup\.index/,
  /^columns: the type/,
  /^columns: /,
  /^sink\./,
  /^add it/,
  /.*/,
];

/** The SELECT of a builder's CREATE MATERIALIZED VIEW ... AS <select>. */
function viewQuery(sql: string): string {
  const at = sql.indexOf('\nAS ');
  if (at < 0) throw new Error(`drift: no query in ${sql.slice(0, 80)}`);
  return sql.slice(at + 4);
}

/** A Kafka engine setting's text from a parsed CREATE. */
function setting(q: CreateQuery | undefined, name: string): string | undefined {
  const v = q?.settings.get(name);
  return v === undefined ? undefined : literalText(v);
}

/**
 * What `migrate up` runs for the drift found, in this order: consumption stops
 * (the parsing view, then the queue when it changes); columns are added,
 * targets before the tables that feed them; views get their new query; the
 * consumer group is carried over; missing and dropped objects are created as
 * the builders build them, in creation order, so the queue and its parsing
 * view come last. Refused differences leave no steps.
 */
export function planChanges(
  p: PipelineConfig,
  drift: ObjectDrift[],
  kafkaPassword: string | undefined,
  liveQueue?: CreateQuery,
): ChangePlan {
  const refused = drift
    .flatMap((o) => o.differences.filter((d) => d.fix === 'refuse').map((d) => ({ ...d, object: o.title })))
    .map((d, i) => ({ d, i, rank: CAUSE_RANK.findIndex((r) => r.test(d.cause ?? '')) }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .map(({ d }) => d);
  if (refused.length > 0) return { steps: [], refused };
  const n = objectNames(p);
  const q = (t: string): string => qualified(n.database, t);
  const by = new Map(drift.map((o) => [o.role === 'shared' ? o.name : o.role, o]));
  const fixes = (role: Role, fix: Fix): Difference[] => by.get(role)?.differences.filter((d) => d.fix === fix) ?? [];
  const wanted = wantedObjects(p, kafkaPassword);
  const statementOf = (role: Role): Statement | undefined => wanted.find((w) => w.role === role)?.statement;
  const steps: Step[] = [];
  const sql = (title: string, text: string): void => {
    steps.push({ kind: 'sql', title, sql: text, display: text });
  };

  const queueChanges = (by.get('queue')?.state ?? 'missing') === 'differs';
  const added = (role: Role): Difference[] => fixes(role, 'add-column');
  const parsingChanges =
    by.get('parsedMv')?.state === 'differs' || added('parsed').length > 0 || added('staging').length > 0;
  const recreate = new Set<Role>();
  const from = queueChanges ? setting(liveQueue, 'kafka_group_name') : undefined;
  const to = p.source.consumerGroup;
  const groupChanges = from !== undefined && from !== to;
  const copy = (again: boolean): Step => ({
    kind: 'copy-group',
    title: again
      ? `consumer group ${to}: the final offsets of ${from}, now that its consumers left`
      : `consumer group ${to}: starts at the committed offsets of ${from}`,
    from: from!,
    to,
    topics: p.source.topics,
    again,
  });
  if (groupChanges) steps.push(copy(false));
  if (queueChanges || parsingChanges) {
    if (by.get('parsedMv')?.state !== 'missing')
      sql(`drop view ${n.parsedMv} (consumption stops)`, `DROP VIEW IF EXISTS ${q(n.parsedMv)} SYNC`);
    recreate.add('parsedMv');
    if (queueChanges) {
      sql(`drop table ${n.queue}`, `DROP TABLE IF EXISTS ${q(n.queue)} SYNC`);
      recreate.add('queue');
    }
  }
  for (const role of ['final', 'kept', 'repairFinal', 'staging', 'parsed'] as const) {
    const cols = added(role).map((d) => d.column!);
    const st = statementOf(role);
    if (cols.length === 0 || !st) continue;
    const want = parseCreateQuery(st.sql.replace(/\s*\n\s*/g, ' '));
    const clauses = cols.map((c) => {
      const i = want.columns.findIndex((x) => x.name === c);
      const def: ColumnDef = want.columns[i]!;
      const prev = want.columns[i - 1];
      return `ADD COLUMN IF NOT EXISTS ${ident(c)} ${def.type}${prev ? ` AFTER ${ident(prev.name)}` : ' FIRST'}`;
    });
    const name = by.get(role)!.name;
    sql(
      `${st.title.replace(/ \S+$/, '')} ${name}: add column ${cols.join(', ')}`,
      `ALTER TABLE ${q(name)} ${clauses.join(', ')}`,
    );
  }
  for (const o of drift) {
    const set = o.differences.filter((d) => d.fix === 'setting' && d.setting).map((d) => d.setting!);
    if (set.length === 0) continue;
    const list = set.map(([k, v]) => `${k} = ${v}`).join(', ');
    sql(`${o.title}: ${list}`, `ALTER TABLE ${q(o.name)} MODIFY SETTING ${list}`);
  }
  for (const role of ['keptToFinalMv', 'stagingMv', 'errorsMv'] as const) {
    const st = statementOf(role);
    if (fixes(role, 'modify-query').length === 0 || !st) continue;
    const name = by.get(role)!.name;
    sql(`view ${name}: new query`, `ALTER TABLE ${q(name)} MODIFY QUERY ${viewQuery(st.sql)}`);
  }
  if (groupChanges) steps.push(copy(true));
  if (queueChanges) {
    const before = new Set((setting(liveQueue, 'kafka_topic_list') ?? '').split(',').map((t) => t.trim()));
    const newTopics = p.source.topics.filter((t) => !before.has(t));
    if (newTopics.length > 0 && p.source.initialOffset === 'latest') {
      steps.push({
        kind: 'seed-latest',
        title: `consumer group ${to}: reads ${newTopics.join(', ')} from the log end`,
        group: to,
        topics: newTopics,
      });
    }
  }
  for (const w of wanted) {
    if (!w.statement) continue;
    const o = by.get(w.role === 'shared' ? w.name : w.role);
    if (o?.state === 'missing' || recreate.has(w.role)) steps.push({ kind: 'sql', ...w.statement });
  }
  return { steps, refused };
}

/** How to make a refused change: the command, and what it loses. */
export function refusalHint(p: PipelineConfig, refused: ChangePlan['refused']): string {
  const adopted = refused.find((r) => r.cause?.startsWith('add it to the table'));
  if (adopted?.cause) return adopted.cause;
  const finalChanges = refused.some((r) => r.object.startsWith('final table') || r.cause?.startsWith('sink.'));
  if (finalChanges) {
    const order = refused.some((r) => r.object.startsWith('final table') && r.text.startsWith('ORDER BY'))
      ? '; sink.orderBy set to the ORDER BY the table has keeps it'
      : '';
    return (
      'to make it: a new pipeline name and sink.table (new objects and consumer group; winnow replay refills it), or ' +
      'winnow migrate down --yes --drop-final, then up, which drops the final table and its rows, the seen keys ' +
      `(duplicates of events already kept pass again), staging and the dead letters${order}`
    );
  }
  return (
    'to make it: a new pipeline name (new objects and consumer group; winnow replay fills its final table), or ' +
    'winnow migrate down --yes, then up, which drops the seen keys (duplicates of events already kept pass again), ' +
    `staging and the dead letters; the final table ${p.sink.table} stays`
  );
}

/** One line: the first refused difference, how many more, and the way to make them. */
export function describeRefusal(p: PipelineConfig, refused: ChangePlan['refused']): string {
  const [first] = refused;
  if (!first) return '';
  const more =
    refused.length > 1
      ? ` and ${refused.length - 1} more difference${refused.length > 2 ? 's' : ''} (winnow migrate plan lists them)`
      : '';
  const why = first.cause && !first.cause.startsWith('add it') ? ` (${first.cause})` : '';
  return `refused, nothing was changed: ${first.object}: ${first.text}${why}${more}`;
}
