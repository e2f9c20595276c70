/**
 * How each configured column gets its value from a Kafka message, as SQL over
 * the message text `_raw`: a nullable value expression, and a condition that
 * is true when the message is at fault for this column (it then goes to the
 * dead letters with a reason instead of into staging). Pure functions.
 */
import type { ColumnConfig, PipelineConfig } from '../config/schema.ts';
import { ident, quoteString } from '../clickhouse/sql.ts';

type Category = 'text' | 'time' | 'number' | 'bool' | 'complex';

interface TypeInfo {
  /** the type without LowCardinality/Nullable wrappers */
  base: string;
  nullable: boolean;
  category: Category;
}

function unwrap(type: string, wrapper: string): string | undefined {
  const prefix = wrapper + '(';
  return type.startsWith(prefix) && type.endsWith(')') ? type.slice(prefix.length, -1).trim() : undefined;
}

export function typeInfo(type: string): TypeInfo {
  let t = type.trim();
  let nullable = false;
  for (;;) {
    const lc = unwrap(t, 'LowCardinality');
    if (lc !== undefined) {
      t = lc;
      continue;
    }
    const n = unwrap(t, 'Nullable');
    if (n !== undefined) {
      t = n;
      nullable = true;
      continue;
    }
    break;
  }
  const name = t.replace(/\(.*$/s, '');
  let category: Category;
  if (/^(String|FixedString|UUID|Enum8|Enum16|Enum|IPv4|IPv6)$/.test(name)) category = 'text';
  else if (/^(Date|Date32|DateTime|DateTime64)$/.test(name)) category = 'time';
  else if (/^(U?Int(8|16|32|64|128|256)|Float(32|64)|BFloat16|Decimal(32|64|128|256)?)$/.test(name))
    category = 'number';
  else if (name === 'Bool' || name === 'Boolean') category = 'bool';
  else category = 'complex';
  return { base: t, nullable, category };
}

/** JSONExtract* path arguments: `'a', 'b'` for a.b */
function pathArgs(path: string[]): string {
  return path.map(quoteString).join(', ');
}

export interface ColumnSql {
  name: string;
  type: string;
  /** Nullable(base) value, NULL when absent or unusable (complex types: the extracted value) */
  value: string;
  /** true when the message is at fault for this column */
  fault: string;
  reason: string;
  /** the value as stored, given no fault */
  stored: string;
}

export function columnSql(col: ColumnConfig): ColumnSql {
  const info = typeInfo(col.type);
  const base = quoteString(info.base);
  const v = `__v_${col.name}`;
  let value: string;
  let present: string;
  if (col.source.kind === 'expr') {
    value = `accurateCastOrNull((${col.source.expr}), ${base})`;
    present = `isNotNull(${ident(v)})`;
  } else {
    const p = pathArgs(col.source.path);
    const jt = `JSONType(_raw, ${p})`;
    present = `${jt} != 'Null'`;
    const fromNumber = `accurateCastOrNull(JSONExtractRaw(_raw, ${p}), ${base})`;
    switch (info.category) {
      case 'text':
        value = `multiIf(${jt} = 'String', accurateCastOrNull(JSONExtractString(_raw, ${p}), ${base}), NULL)`;
        break;
      case 'time':
        value = `multiIf(${jt} = 'String', accurateCastOrNull(parseDateTime64BestEffortOrNull(JSONExtractString(_raw, ${p}), 6, 'UTC'), ${base}), ${jt} IN ('Int64', 'UInt64', 'Double'), ${fromNumber}, NULL)`;
        break;
      case 'number':
        value = `multiIf(${jt} IN ('Int64', 'UInt64', 'Double'), ${fromNumber}, NULL)`;
        break;
      case 'bool':
        value = `multiIf(${jt} = 'Bool', accurateCastOrNull(JSONExtractBool(_raw, ${p}), ${base}), NULL)`;
        break;
      case 'complex':
        // Nullable() cannot wrap arrays and maps: the value is the extraction itself.
        value = `JSONExtract(_raw, ${p}, ${quoteString(col.type)})`;
        present = `JSONHas(_raw, ${p})`;
        break;
    }
  }
  const where = col.source.kind === 'expr' ? `expression ${col.source.expr}` : `$.${col.source.path.join('.')}`;
  let fault: string;
  let reason: string;
  if (info.category === 'complex') {
    fault = col.optional ? 'false' : `NOT (${present})`;
    reason = `${col.name}: missing at ${where}`;
  } else if (info.nullable || col.optional) {
    // absent is fine; present but unusable is the message's fault
    fault = `(${present}) AND isNull(${ident(v)})`;
    reason = `${col.name}: not a ${col.type} at ${where}`;
  } else {
    fault = `isNull(${ident(v)})`;
    reason = `${col.name}: missing, null or not a ${col.type} at ${where}`;
  }
  let stored: string;
  if (info.category === 'complex') stored = ident(v);
  else if (info.nullable) stored = `CAST(${ident(v)}, ${quoteString(col.type)})`;
  else stored = `CAST(ifNull(${ident(v)}, defaultValueOfTypeName(${base})), ${quoteString(col.type)})`;
  return { name: col.name, type: col.type, value, fault, reason, stored };
}

/**
 * For a key column whose type holds an empty string (String, FixedString, under
 * LowCardinality or Nullable): the condition that its value is empty, and the
 * reason. An empty key is refused like a null one (a dead letter), not kept as
 * one key shared by every message that lacks a real one. Other types have no
 * empty value: '' is already no UUID, number or time (columnSql's fault).
 */
export function emptyKeySql(col: ColumnConfig): { fault: string; reason: string } | undefined {
  const name = typeInfo(col.type).base.replace(/\(.*$/s, '');
  if (name !== 'String' && name !== 'FixedString') return undefined;
  const where = col.source.kind === 'expr' ? `expression ${col.source.expr}` : `$.${col.source.path.join('.')}`;
  return { fault: `${ident(`__v_${col.name}`)} = ''`, reason: `${col.name}: empty key at ${where}` };
}

/** The dedup time of a message as SQL inside the validating select. */
export function timeSql(p: PipelineConfig): string {
  switch (p.dedup.time.kind) {
    case 'kafka':
      return 'ifNull(_timestamp_ms, now64(3))';
    case 'ingestion':
      return 'now64(3)';
    case 'column':
      return `toDateTime64(ifNull(${ident('__v_' + p.dedup.time.column)}, toDateTime64(0, 3)), 3, 'UTC')`;
  }
}
