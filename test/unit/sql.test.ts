import { describe, expect, it } from 'vitest';
import { ident, quoteString, renderTemplate } from '../../src/clickhouse/sql.ts';
import { typeInfo } from '../../src/provisioning/columns.ts';
import { validatedSelect } from '../../src/provisioning/objects.ts';
import { STABLE_MAX_BLOCK_SIZE, tokenInsert, tokenInsertSelect } from '../../src/clickhouse/token-dedup.ts';
import { validateConfig } from '../../src/config/index.ts';
import { rangesCondition, sliceInsertSql } from '../../src/slicing/slice.ts';

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
    expect(renderTemplate('SELECT {{a}} FROM {{b}} WHERE x = {p:String};\n', { a: '1', b: 't' })).toBe(
      'SELECT 1 FROM t WHERE x = {p:String}',
    );
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

describe('the parsing view', () => {
  it('refuses an empty key of a String or FixedString key column, and checks no other column for it', () => {
    const p = validateConfig(
      {
        pipelines: [
          {
            name: 'p',
            source: { brokers: ['k:9092'], topics: ['t'] },
            columns: [
              { name: 'tenant', type: 'LowCardinality(String)' },
              { name: 'code', type: 'FixedString(4)', path: 'a.code' },
              { name: 'id', type: 'UUID' },
              { name: 'name', type: 'String' },
            ],
            dedup: { key: ['tenant', 'code', 'id'], window: '1h' },
            sink: { table: 'x' },
          },
        ],
      },
      'test',
      {},
    ).pipelines[0]!;
    const sql = validatedSelect(p, 'q');
    expect(sql).toContain("`__v_tenant` = '', 'tenant: empty key at $.tenant',");
    expect(sql).toContain("`__v_code` = '', 'code: empty key at $.a.code',");
    expect(sql).not.toMatch(/`__v_(id|name)` = ''/);
    // After every column's own fault: a missing key keeps its reason.
    expect(sql.indexOf("`__v_tenant` = ''")).toBeGreaterThan(sql.indexOf('isNull(`__v_name`)'));
  });
});

describe('token-reliant writes', () => {
  const p = validateConfig(
    {
      pipelines: [
        {
          name: 'users',
          source: { brokers: ['k:9092'], topics: ['users'] },
          columns: [
            { name: 'event_id', type: 'UUID' },
            { name: 'name', type: 'String' },
          ],
          dedup: { window: '1h' },
          sink: { table: 'users_dedup' },
        },
      ],
    },
    'test',
    {},
  ).pipelines[0]!;

  it('sort the slice SELECT by every column, so its chunks (and block ids) depend on its rows alone', () => {
    const ins = sliceInsertSql(p, 'users-1-abc', [{ topic: 'users', partition: 0, fromOffset: 0, toOffset: 9 }]);
    expect(ins.sql.trimEnd()).toMatch(/\nORDER BY ALL$/);
  });

  it('run with deduplication forced on and a fixed block size', () => {
    const s = tokenInsertSelect('t1');
    expect(s).toMatchObject({
      insert_deduplication_token: 't1',
      deduplicate_insert_select: 'force_enable',
      deduplicate_insert: 'enable',
      insert_deduplicate: 1,
    });
    expect(s['max_block_size']).toBe(String(STABLE_MAX_BLOCK_SIZE));
    expect(tokenInsert('t2')).toMatchObject({ insert_deduplication_token: 't2', deduplicate_insert: 'enable' });
  });
});
