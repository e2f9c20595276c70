/**
 * A CREATE statement as ClickHouse formats it on one line (system.tables
 * create_table_query, formatQuerySingleLine), taken apart into what `migrate
 * plan` compares: columns (name, type, what follows the type), the table's
 * clauses (ENGINE, PARTITION BY, ORDER BY, TTL, ...), its settings one by one,
 * and a view's target and query. Both sides of a comparison come out of the
 * same formatter, so clause texts compare as they are; only types need
 * ClickHouse's own normalisation (Int and Int32). Pure functions.
 */

export interface ColumnDef {
  name: string;
  type: string;
  /** what follows the type: DEFAULT, MATERIALIZED, CODEC, ... ('' when nothing) */
  rest: string;
}

export interface CreateQuery {
  kind: 'table' | 'view';
  columns: ColumnDef[];
  /** INDEX, PROJECTION and CONSTRAINT entries of the column list */
  elements: string[];
  /** ENGINE, PARTITION BY, PRIMARY KEY, ORDER BY, SAMPLE BY, TTL, COMMENT: the text after the keyword */
  clauses: Map<string, string>;
  /** name -> value as written (a quoted literal keeps its quotes) */
  settings: Map<string, string>;
  /** a view's target table */
  to?: string;
  /** a view's query */
  select?: string;
}

export const CLAUSES = [
  'ENGINE',
  'PARTITION BY',
  'PRIMARY KEY',
  'ORDER BY',
  'SAMPLE BY',
  'TTL',
  'SETTINGS',
  'COMMENT',
] as const;
const COLUMN_MODIFIERS = [
  'DEFAULT',
  'MATERIALIZED',
  'ALIAS',
  'EPHEMERAL',
  'CODEC',
  'TTL',
  'COMMENT',
  'STATISTICS',
  'SETTINGS',
  'NULL',
  'NOT',
  'PRIMARY',
];

/** Index of the quote that closes the one at `i` ('...', `...`, "..."; backslash escapes, doubled quotes). */
function closingQuote(s: string, i: number): number {
  const q = s[i];
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === q) {
      if (s[j + 1] === q) j++;
      else return j;
    }
  }
  return s.length;
}

/**
 * Calls `at(i)` for every index outside quotes and at bracket depth 0 (the
 * brackets themselves included); stops when it returns true. Returns that index or -1.
 */
function scanTopLevel(s: string, at: (i: number) => boolean, from = 0): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "'" || ch === '`' || ch === '"') {
      if (depth === 0 && at(i)) return i;
      i = closingQuote(s, i);
      continue;
    }
    if (ch === ')' || ch === ']') depth--;
    if (depth === 0 && at(i)) return i;
    if (ch === '(' || ch === '[') depth++;
  }
  return -1;
}

/** The index of the bracket that closes the one at `open`. */
function closingBracket(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === "'" || ch === '`' || ch === '"') i = closingQuote(s, i);
    else if (ch === '(' || ch === '[') depth++;
    else if (ch === ')' || ch === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return s.length;
}

/** `s` split at top-level occurrences of `sep`, each part trimmed. */
export function splitTopLevel(s: string, sep = ','): string[] {
  const out: string[] = [];
  let start = 0;
  scanTopLevel(s, (i) => {
    if (s.startsWith(sep, i)) {
      out.push(s.slice(start, i).trim());
      start = i + sep.length;
    }
    return false;
  });
  out.push(s.slice(start).trim());
  return out.filter((p) => p !== '');
}

/** Index of a top-level keyword (a whole word, upper case as the formatter writes keywords), or -1. */
function findWord(s: string, word: string, from = 0): number {
  return scanTopLevel(
    s,
    (i) =>
      s.startsWith(word, i) &&
      (i === 0 || s[i - 1] === ' ' || s[i - 1] === ')') &&
      /^[\s(=]|^$/.test(s.slice(i + word.length, i + word.length + 1)),
    from,
  );
}

/** An identifier as written: `a b` or a bare word; returns it unquoted and where it ends. */
function readName(s: string, i: number): [string, number] {
  if (s[i] === '`') {
    const end = closingQuote(s, i);
    return [
      s
        .slice(i + 1, end)
        .replaceAll('``', '`')
        .replaceAll('\\`', '`'),
      end + 1,
    ];
  }
  let end = i;
  while (end < s.length && s[end] !== ' ' && s[end] !== '(') end++;
  return [s.slice(i, end), end];
}

function parseColumn(def: string): ColumnDef | undefined {
  if (/^(INDEX|PROJECTION|CONSTRAINT) /.test(def)) return undefined;
  const [name, end] = readName(def, 0);
  const rest = def.slice(end).trim();
  let cut = rest.length;
  for (const m of COLUMN_MODIFIERS) {
    const at = findWord(rest, m);
    if (at > 0 && at < cut) cut = at;
  }
  return { name, type: rest.slice(0, cut).trim(), rest: rest.slice(cut).trim() };
}

function parseColumns(list: string): Pick<CreateQuery, 'columns' | 'elements'> {
  const columns: ColumnDef[] = [];
  const elements: string[] = [];
  for (const def of splitTopLevel(list)) {
    const c = parseColumn(def);
    if (c) columns.push(c);
    else elements.push(def);
  }
  return { columns, elements };
}

/** `a = 1, b = 'x'` to a map; values stay as written. */
export function parseSettings(list: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of splitTopLevel(list)) {
    const eq = item.indexOf('=');
    if (eq < 0) out.set(item.trim(), '');
    else out.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  return out;
}

/** A quoted literal's text ('a\'b' -> a'b); anything else as it is. */
export function literalText(value: string): string {
  if (!value.startsWith("'") || !value.endsWith("'") || value.length < 2) return value;
  return value.slice(1, -1).replace(/\\(.)|''/g, (m, c: string | undefined) => (c === undefined ? "'" : c));
}

/** Takes a CREATE TABLE or CREATE [MATERIALIZED] VIEW statement formatted on one line apart. */
export function parseCreateQuery(sql: string): CreateQuery {
  const head = /^CREATE (TABLE|MATERIALIZED VIEW|VIEW) (?:IF NOT EXISTS )?/.exec(sql);
  if (!head) throw new Error(`not a CREATE TABLE or VIEW statement: ${sql.slice(0, 80)}`);
  let i = head[0].length;
  // The object's name: db.name, each part back-quoted or not.
  for (;;) {
    i = readName(sql, i)[1];
    if (sql[i] !== '.') break;
    i++;
  }
  let rest = sql.slice(i).trim();
  const out: CreateQuery = {
    kind: head[1] === 'TABLE' ? 'table' : 'view',
    columns: [],
    elements: [],
    clauses: new Map(),
    settings: new Map(),
  };
  if (out.kind === 'view') {
    const as = findWord(rest, 'AS');
    const header = as < 0 ? rest : rest.slice(0, as).trim();
    out.select = as < 0 ? '' : rest.slice(as + 3).trim();
    const to = /^TO (\S+)/.exec(header);
    if (to) out.to = to[1]!;
    const open = header.indexOf('(');
    if (open >= 0) Object.assign(out, parseColumns(header.slice(open + 1, closingBracket(header, open))));
    return out;
  }
  if (rest.startsWith('(')) {
    const close = closingBracket(rest, 0);
    Object.assign(out, parseColumns(rest.slice(1, close)));
    rest = rest.slice(close + 1).trim();
  }
  const found = CLAUSES.map((c) => [c, findWord(rest, c)] as const)
    .filter(([, at]) => at >= 0)
    .sort((a, b) => a[1] - b[1]);
  found.forEach(([clause, at], k) => {
    const end = found[k + 1]?.[1] ?? rest.length;
    let text = rest.slice(at + clause.length, end).trim();
    if (clause === 'ENGINE') text = text.replace(/^=\s*/, '');
    if (clause === 'SETTINGS') out.settings = parseSettings(text);
    else out.clauses.set(clause, text);
  });
  return out;
}

export interface SelectItem {
  /** the name the item has in the result: its alias, or the column it is */
  name: string;
  expr: string;
}

/**
 * The items of a SELECT's list and what follows FROM. `from` is the FROM
 * clause up to WHERE or the end; `subquery` the SELECT inside it when it is `(SELECT ...)`.
 */
export function selectParts(select: string): { items: SelectItem[]; from: string; subquery?: string } {
  const body = select.replace(/^SELECT (DISTINCT )?/, '');
  const fromAt = findWord(body, 'FROM');
  const list = fromAt < 0 ? body : body.slice(0, fromAt);
  const items = splitTopLevel(list).map((item) => {
    const as = findLastWord(item, 'AS');
    if (as >= 0) return { name: readName(item.slice(as + 3).trim(), 0)[0], expr: item.slice(0, as).trim() };
    return { name: readName(item, 0)[0], expr: item };
  });
  const from = fromAt < 0 ? '' : body.slice(fromAt + 5).trim();
  const out: { items: SelectItem[]; from: string; subquery?: string } = { items, from };
  if (from.startsWith('(')) out.subquery = from.slice(1, closingBracket(from, 0)).trim();
  return out;
}

function findLastWord(s: string, word: string): number {
  let last = -1;
  for (let at = findWord(s, word); at >= 0; at = findWord(s, word, at + 1)) last = at;
  return last;
}
