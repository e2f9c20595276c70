/**
 * Checks that span several keys (a dedup key must name a column, SASL needs
 * credentials, names must be unique). They run even when other keys of the
 * same object failed, so one run reports every problem; hence they read their
 * input defensively: a value may be parsed, half parsed or raw.
 */
import {
  isReservedColumnName,
  PROTOCOLS,
  RESERVED_COLUMN_NAMES,
  RESERVED_COLUMN_PREFIX,
  SASL_MECHANISMS,
  TIME_COLUMN_TYPE,
} from './rules.ts';

/** The part of zod's refinement context these checks use. */
export interface IssueSink {
  addIssue(issue: { code: 'custom'; message: string; path: PropertyKey[]; input: unknown }): void;
}

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** Entries of a list (or a single string standing for one) with their index. */
const entries = (v: unknown): [number, string][] => {
  const items: unknown[] = Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
  return items.flatMap((x, i): [number, string][] => (typeof x === 'string' ? [[i, x]] : []));
};

/** `input` is what a message starting with "expected" reports as found; undefined reports nothing. */
function issue(ctx: IssueSink, path: PropertyKey[], message: string, input?: unknown): void {
  ctx.addIssue({ code: 'custom', path, message, input });
}

function duplicates(ctx: IssueSink, base: PropertyKey[], values: [number, string][], what: string): void {
  const first = new Map<string, number>();
  for (const [i, v] of values) {
    const j = first.get(v);
    if (j === undefined) first.set(v, i);
    else issue(ctx, [...base, i], `duplicate ${what} "${v}" (already at index ${j})`);
  }
}

export function checkSource(value: unknown, ctx: IssueSink): void {
  const source = rec(value);
  if (!source) return;
  duplicates(ctx, ['brokers'], entries(source['brokers']), 'broker');
  duplicates(ctx, ['topics'], entries(source['topics']), 'topic');

  const auth = rec(source['auth']) ?? {};
  const protocol = PROTOCOLS.find((p) => p === auth['protocol']);
  if (protocol === undefined) return; // reported by the schema
  const sasl = protocol.startsWith('SASL_');
  const credentials: [string, string][] = [
    ['mechanism', `one of ${SASL_MECHANISMS.join(', ')}`],
    ['username', 'a user name'],
    ['password', 'a string or { env: NAME }'],
  ];
  for (const [key, form] of credentials) {
    if (sasl && auth[key] === undefined) {
      issue(ctx, ['auth', key], `required with protocol ${protocol}; expected ${form}`);
    } else if (!sasl && auth[key] !== undefined) {
      issue(ctx, ['auth', key], `only allowed with protocol SASL_PLAINTEXT or SASL_SSL, not ${protocol}`);
    }
  }
  if (source['tls'] !== undefined && protocol !== 'SSL' && protocol !== 'SASL_SSL') {
    issue(ctx, ['tls'], `only allowed with protocol SSL or SASL_SSL, not ${protocol}`);
  }
}

interface ColumnFacts {
  index: number;
  type: string | undefined;
  optional: boolean;
}

export function checkPipeline(value: unknown, ctx: IssueSink): void {
  const p = rec(value);
  if (!p || !Array.isArray(p['columns'])) return;

  const columns = new Map<string, ColumnFacts>();
  p['columns'].forEach((raw, index) => {
    const c = rec(raw);
    const name = str(c?.['name']);
    if (name === undefined) return;
    const seen = columns.get(name);
    if (seen !== undefined) {
      issue(ctx, ['columns', index, 'name'], `duplicate column name "${name}" (already columns[${seen.index}])`);
      return;
    }
    if (isReservedColumnName(name)) {
      const reserved = `${RESERVED_COLUMN_NAMES.join(', ')}, and names starting with ${RESERVED_COLUMN_PREFIX}`;
      issue(ctx, ['columns', index, 'name'], `"${name}" is reserved (${reserved}); rename the column`);
    }
    columns.set(name, { index, type: str(c?.['type']), optional: c?.['optional'] === true });
  });
  const names = [...columns.keys()].join(', ');
  const column = (path: PropertyKey[], name: string): ColumnFacts | undefined => {
    const facts = columns.get(name);
    if (facts === undefined) issue(ctx, path, `expected the name of a column (${names})`, name);
    return facts;
  };

  const dedup = rec(p['dedup']) ?? {};
  const key = entries(dedup['key']);
  duplicates(ctx, ['dedup', 'key'], key, 'key column');
  for (const [i, name] of key) {
    const facts = column(['dedup', 'key', i], name);
    if (facts?.optional) {
      issue(
        ctx,
        ['dedup', 'key', i],
        `column "${name}" is optional; a key column must be in every message (optional: false)`,
      );
    }
  }

  const timeColumn = str(rec(dedup['time'])?.['column']);
  if (timeColumn !== undefined) {
    const facts = column(['dedup', 'time', 'column'], timeColumn);
    if (facts?.type !== undefined && !TIME_COLUMN_TYPE.test(facts.type)) {
      issue(
        ctx,
        ['dedup', 'time', 'column'],
        `expected a column of type Date, Date32, DateTime or DateTime64, got "${timeColumn}" of type ${facts.type}`,
      );
    } else if (facts?.optional) {
      issue(
        ctx,
        ['dedup', 'time', 'column'],
        `column "${timeColumn}" is optional; the time column must be in every message (optional: false)`,
      );
    }
  }

  const orderBy = entries(rec(p['sink'])?.['orderBy']);
  duplicates(ctx, ['sink', 'orderBy'], orderBy, 'column');
  for (const [i, name] of orderBy) column(['sink', 'orderBy', i], name);
}

export function checkConfig(value: unknown, ctx: IssueSink): void {
  const pipelines = rec(value)?.['pipelines'];
  if (!Array.isArray(pipelines)) return;
  const names = new Map<string, number>();
  const tables = new Map<string, number>();
  const groups = new Map<string, number>();
  pipelines.forEach((raw, j) => {
    const p = rec(raw);
    const name = str(p?.['name']);
    if (name !== undefined) {
      const i = names.get(name);
      if (i !== undefined) {
        issue(ctx, ['pipelines', j, 'name'], `duplicate pipeline name "${name}" (already pipelines[${i}].name)`);
        return; // its defaults (consumer group) clash too; one message is enough
      }
      names.set(name, j);
    }
    // Two pipelines inserting into one final table would each dedup only against themselves.
    const sink = rec(p?.['sink']);
    const table = str(sink?.['table']);
    if (table !== undefined) {
      const id = `${str(sink?.['url']) ?? ''} ${str(sink?.['database']) ?? ''}.${table}`;
      const i = tables.get(id);
      if (i !== undefined) {
        issue(
          ctx,
          ['pipelines', j, 'sink', 'table'],
          `table "${table}" is already the sink of pipelines[${i}]; each pipeline needs its own final table`,
        );
      } else tables.set(id, j);
    }
    // Kafka engine tables in one consumer group split the messages between them.
    const group = str(rec(p?.['source'])?.['consumerGroup']);
    if (group !== undefined) {
      const i = groups.get(group);
      if (i !== undefined) {
        issue(
          ctx,
          ['pipelines', j, 'source', 'consumerGroup'],
          `consumer group "${group}" is already used by pipelines[${i}]; each pipeline needs its own`,
        );
      } else groups.set(group, j);
    }
  });
}
