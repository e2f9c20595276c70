import { describe, expect, it } from 'vitest';
import { ident, quoteString, renderTemplate } from '../../src/clickhouse/sql.ts';
import { typeInfo } from '../../src/pipeline/columns.ts';
import { rangesCondition } from '../../src/pipeline/slice-sql.ts';

describe('SQL text helpers', () => {
  it('quotes strings so they cannot break out of the literal', () => {
    expect(quoteString("it's")).toBe("'it\\'s'");
    expect(quoteString('a\\b')).toBe("'a\\\\b'");
    expect(quoteString('x\ny')).toBe("'x\\x0ay'");
    expect(quoteString("'; DROP TABLE t; --")).toBe("'\\'; DROP TABLE t; --'");
  });

  it('accepts only plain identifiers', () => {
    expect(ident('users_dedup')).toBe('`users_dedup`');
    expect(() => ident('a`b')).toThrow(/identifier/);
    expect(() => ident('1abc')).toThrow(/identifier/);
    expect(() => ident('')).toThrow(/identifier/);
  });

  it('fills every placeholder and refuses missing or unused values', () => {
    expect(renderTemplate('SELECT {{a}} FROM {{b}} WHERE x = {p:String};\n', { a: '1', b: 't' })).toBe('SELECT 1 FROM t WHERE x = {p:String}');
    expect(() => renderTemplate('SELECT {{a}}', {})).toThrow(/no value for \{\{a\}\}/);
    expect(() => renderTemplate('SELECT 1', { a: '1' })).toThrow(/has no placeholder/);
  });

  it('passes slice ranges as parameters, one set per range', () => {
    const c = rangesCondition([
      { topic: "t'1", partition: 0, fromOffset: 5, toOffset: 9 },
      { topic: 't2', partition: 3, fromOffset: 0, toOffset: 1 },
    ]);
    expect(c.sql).not.toContain("t'1");
    expect(c.params).toEqual({ rt0: "t'1", rp0: 0, rf0: 5, re0: 9, rt1: 't2', rp1: 3, rf1: 0, re1: 1 });
    expect(rangesCondition([]).sql).toBe('0');
  });
});

describe('typeInfo', () => {
  it('sees through LowCardinality and Nullable and sorts types into categories', () => {
    expect(typeInfo('UUID')).toEqual({ base: 'UUID', nullable: false, category: 'text' });
    expect(typeInfo('LowCardinality(Nullable(String))')).toEqual({ base: 'String', nullable: true, category: 'text' });
    expect(typeInfo("DateTime64(3, 'UTC')").category).toBe('time');
    expect(typeInfo('Decimal(18, 4)').category).toBe('number');
    expect(typeInfo('UInt64').category).toBe('number');
    expect(typeInfo('Bool').category).toBe('bool');
    expect(typeInfo('Array(String)').category).toBe('complex');
  });
});
