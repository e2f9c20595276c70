/**
 * Why one file over 300 lines: one subject (drift.ts's comparison and plan) through one set of fixtures.
 *
 * Drift without a server: CREATE statements as ClickHouse formats them on one
 * line (create_table_query) taken apart; objects compared, each difference
 * with what `migrate up` does about it (in place, harmless, or refused with
 * the configuration key behind it); the order of the in-place steps (the
 * parsing view dropped first and created last, like 0009).
 * The comparison against a real server is test/e2e/drift.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig, type PipelineConfig } from '../../src/config/index.ts';
import { literalText, parseCreateQuery, selectParts, type CreateQuery } from '../../src/provisioning/create-query.ts';
import { compareObject, planChanges, type ObjectDrift, type Role } from '../../src/provisioning/drift.ts';

function pipeline(extra: { source?: Record<string, unknown>; key?: string[] } = {}): PipelineConfig {
  return validateConfig(
    {
      pipelines: [
        {
          name: 'users',
          source: { brokers: ['127.0.0.1:9092'], topics: ['users'], ...extra.source },
          columns: [
            { name: 'event_id', type: 'UUID' },
            { name: 'name', type: 'String', path: 'user_name' },
          ],
          dedup: { window: '1h', ...(extra.key ? { key: extra.key } : {}) },
          sink: { database: 'db', table: 'users_dedup' },
        },
      ],
    },
    'test',
    {},
  ).pipelines[0]!;
}

const same = (t: string): string => (t === 'Int' ? 'Int32' : t);

const QUEUE = (brokers: string, extra = ''): string =>
  `CREATE TABLE db.winnow_users_queue (\`_raw\` String) ENGINE = Kafka SETTINGS kafka_broker_list = '${brokers}', ` +
  "kafka_topic_list = 'users', kafka_group_name = 'winnow_users', kafka_format = 'RawBLOB', " +
  `kafka_handle_error_mode = 'stream', kafka_num_consumers = 1, kafka_flush_interval_ms = 500${extra}`;

const SEEN = (key: string, ttl = 7200): string =>
  "CREATE TABLE db.winnow_users_seen (`event_id` UUID, `__t` DateTime64(3, 'UTC'), `__slice` String, " +
  `\`__h\` UInt64 MATERIALIZED sipHash64(${key}), \`__at\` DateTime DEFAULT now()) ENGINE = MergeTree ` +
  `PARTITION BY toStartOfInterval(__t, toIntervalSecond(3600)) ORDER BY ${key} ` +
  `TTL greatest(toDateTime(__t), __at) + toIntervalSecond(${ttl}) SETTINGS non_replicated_deduplication_window = 10000`;

describe('a CREATE statement taken apart', () => {
  it('a MergeTree table: columns with what follows their type, clauses, settings', () => {
    const q = parseCreateQuery(`${SEEN('event_id')}, index_granularity = 8192`);
    expect(q.kind).toBe('table');
    expect(q.columns.map((c) => [c.name, c.type, c.rest])).toEqual([
      ['event_id', 'UUID', ''],
      ['__t', "DateTime64(3, 'UTC')", ''],
      ['__slice', 'String', ''],
      ['__h', 'UInt64', 'MATERIALIZED sipHash64(event_id)'],
      ['__at', 'DateTime', 'DEFAULT now()'],
    ]);
    expect(Object.fromEntries(q.clauses)).toEqual({
      ENGINE: 'MergeTree',
      'PARTITION BY': 'toStartOfInterval(__t, toIntervalSecond(3600))',
      'ORDER BY': 'event_id',
      TTL: 'greatest(toDateTime(__t), __at) + toIntervalSecond(7200)',
    });
    expect(Object.fromEntries(q.settings)).toEqual({
      non_replicated_deduplication_window: '10000',
      index_granularity: '8192',
    });
  });

  it('a Kafka queue: its settings one by one, quoted values as text', () => {
    const q = parseCreateQuery(
      QUEUE('a:1,b:2', ", kafka_sasl_username = 'o\\'neil', kafka_sasl_password = '[HIDDEN]'"),
    );
    expect(literalText(q.settings.get('kafka_broker_list')!)).toBe('a:1,b:2');
    expect(literalText(q.settings.get('kafka_sasl_username')!)).toBe("o'neil");
    expect(q.settings.get('kafka_num_consumers')).toBe('1');
    expect(q.clauses.get('ENGINE')).toBe('Kafka');
  });

  it('a materialized view: target, the column list ClickHouse adds, the query', () => {
    const q = parseCreateQuery(
      'CREATE MATERIALIZED VIEW db.mv TO db.t (`a` String, `b` UInt8) ' +
        "AS SELECT a, CAST(b AS UInt8) AS b FROM db.src WHERE x = 'AS'",
    );
    expect(q.kind).toBe('view');
    expect(q.to).toBe('db.t');
    expect(q.columns.map((c) => c.name)).toEqual(['a', 'b']);
    expect(q.select).toBe("SELECT a, CAST(b AS UInt8) AS b FROM db.src WHERE x = 'AS'");
    const parts = selectParts(q.select!);
    expect(parts.items).toEqual([
      { name: 'a', expr: 'a' },
      { name: 'b', expr: 'CAST(b AS UInt8)' },
    ]);
    expect(selectParts('SELECT x AS y FROM (SELECT 1 AS x FROM t)').subquery).toBe('SELECT 1 AS x FROM t');
  });
});

describe('objects compared', () => {
  const p = pipeline();

  it('the queue: changed settings are recreated in place; the password only by whether it is set', () => {
    const want = parseCreateQuery(QUEUE('localhost:9092', ", kafka_sasl_password = '***'"));
    const have = parseCreateQuery(QUEUE('127.0.0.1:9092'));
    expect(compareObject(p, 'queue', want, have, same)).toEqual([
      { text: "kafka_broker_list '127.0.0.1:9092' -> 'localhost:9092'", fix: 'source' },
      { text: "kafka_sasl_password (none) -> '***'", fix: 'source' },
    ]);
    const hidden = parseCreateQuery(QUEUE('localhost:9092', ", kafka_sasl_password = '[HIDDEN]'"));
    expect(compareObject(p, 'queue', want, hidden, same)).toEqual([]);
  });

  it('a table: an added configured column goes in by ALTER; a removed one or another type is refused', () => {
    const table = (cols: string): CreateQuery =>
      parseCreateQuery(`CREATE TABLE db.winnow_users_staging (${cols}) ENGINE = MergeTree ORDER BY _offset`);
    const withN = validateConfig(
      { pipelines: [{ ...rawUsers(), columns: [...rawUsers().columns, { name: 'n', type: 'Int' }] }] },
      'test',
      {},
    ).pipelines[0]!;
    const want = table('`event_id` UUID, `name` String, `n` Int, `_offset` UInt64');
    expect(compareObject(withN, 'staging', want, table('`event_id` UUID, `n` Int32, `_offset` UInt64'), same)).toEqual([
      { text: 'column name String added', fix: 'add-column', column: 'name' },
    ]);
    const other = table('`event_id` UUID, `name` String, `n` Int64, `x` UInt8, `_offset` UInt64');
    expect(compareObject(withN, 'staging', want, other, same)).toEqual([
      { text: 'column n: Int64 -> Int32', fix: 'refuse', cause: 'columns: the type of n' },
      { text: 'column x removed', fix: 'refuse', cause: 'columns: x removed' },
    ]);
    // Configured columns in another order: harmless, left as they are.
    expect(
      compareObject(withN, 'staging', want, table('`name` String, `event_id` UUID, `n` Int32, `_offset` UInt64'), same),
    ).toEqual([{ text: 'column order differs from the configuration (harmless, left as it is)', fix: 'none' }]);
  });

  it('the seen keys of another key, or of another window, are refused, naming dedup.key and dedup.window', () => {
    const found = compareObject(
      p,
      'seen',
      parseCreateQuery(SEEN('(event_id, name)', 7200)),
      parseCreateQuery(SEEN('event_id', 7200)),
      same,
    );
    expect(found.every((d) => d.fix === 'refuse')).toBe(true);
    expect(found.find((d) => d.text.startsWith('ORDER BY'))).toEqual({
      text: 'ORDER BY event_id -> (event_id, name)',
      fix: 'refuse',
      cause: 'dedup.key',
    });
    const window = compareObject(
      p,
      'seen',
      parseCreateQuery(SEEN('event_id', 14400)),
      parseCreateQuery(SEEN('event_id', 7200)),
      same,
    );
    expect(window).toEqual([
      {
        text:
          'TTL greatest(toDateTime(__t), __at) + toIntervalSecond(7200) -> ' +
          'greatest(toDateTime(__t), __at) + toIntervalSecond(14400)',
        fix: 'refuse',
        cause: 'dedup.window',
      },
    ]);
  });

  it('a MergeTree setting the builders set, reset by hand, is set again in place', () => {
    const slices = (settings: string): CreateQuery =>
      parseCreateQuery(`CREATE TABLE db.winnow_slices (\`seq\` UInt64) ENGINE = MergeTree ORDER BY seq${settings}`);
    const want = slices(' SETTINGS non_replicated_deduplication_window = 10000');
    expect(compareObject(p, 'shared', want, slices(' SETTINGS index_granularity = 8192'), same)).toEqual([
      {
        text: 'non_replicated_deduplication_window (none) -> 10000',
        fix: 'setting',
        setting: ['non_replicated_deduplication_window', '10000'],
      },
    ]);
    const plan = planChanges(
      p,
      [
        {
          name: 'winnow_slices',
          role: 'shared',
          title: 'slices table winnow_slices',
          state: 'differs',
          notes: [],
          differences: compareObject(p, 'shared', want, slices(''), same),
        },
      ],
      undefined,
    );
    expect(plan.steps).toEqual([
      {
        kind: 'sql',
        title: 'slices table winnow_slices: non_replicated_deduplication_window = 10000',
        sql: 'ALTER TABLE `db`.`winnow_slices` MODIFY SETTING non_replicated_deduplication_window = 10000',
        display: 'ALTER TABLE `db`.`winnow_slices` MODIFY SETTING non_replicated_deduplication_window = 10000',
      },
    ]);
  });

  it('the parsing view: other parsing rules are recreated in place, another dedup time is refused', () => {
    const view = (time: string, path: string): string =>
      'CREATE MATERIALIZED VIEW db.winnow_users_parsed_mv TO db.winnow_users_parsed ' +
      `AS SELECT __v_name AS name, ${time} AS __t ` +
      `FROM (SELECT JSONExtractString(_raw, '${path}') AS __v_name FROM db.winnow_users_queue)`;
    const kafka = 'ifNull(_timestamp_ms, now64(3))';
    expect(
      compareObject(
        p,
        'parsedMv',
        parseCreateQuery(view(kafka, 'user')),
        parseCreateQuery(view(kafka, 'user_name')),
        same,
      ),
    ).toEqual([{ text: 'SELECT changes the parsing of name', fix: 'parse' }]);
    expect(
      compareObject(
        p,
        'parsedMv',
        parseCreateQuery(view('now64(3)', 'user')),
        parseCreateQuery(view(kafka, 'user')),
        same,
      ),
    ).toEqual([{ text: `the dedup time __t: ${kafka} -> now64(3)`, fix: 'refuse', cause: 'dedup.time' }]);
  });

  it('an adopted final table: a missing column is refused with the ALTER that adds it, an extra one is fine', () => {
    const adopted = validateConfig(
      { pipelines: [{ ...rawUsers(), sink: { database: 'db', table: 't', mode: 'adopt' } }] },
      'test',
      {},
    ).pipelines[0]!;
    const have = parseCreateQuery(
      'CREATE TABLE db.t (`event_id` UUID, `note` String) ENGINE = MergeTree ORDER BY event_id ' +
        'SETTINGS non_replicated_deduplication_window = 100',
    );
    expect(compareObject(adopted, 'final', undefined, have, same)).toEqual([
      {
        text: 'column name String missing',
        fix: 'refuse',
        cause: 'add it to the table: ALTER TABLE `db`.`t` ADD COLUMN `name` String',
      },
      { text: 'extra column note String (not configured; gets its default)', fix: 'none' },
    ]);
  });
});

function rawUsers() {
  return {
    name: 'users',
    source: { brokers: ['127.0.0.1:9092'], topics: ['users'] },
    columns: [
      { name: 'event_id', type: 'UUID' },
      { name: 'name', type: 'String', path: 'user_name' },
    ] as { name: string; type: string; path?: string }[],
    dedup: { window: '1h' },
    sink: { database: 'db', table: 'users_dedup' },
  };
}

describe('the in-place steps', () => {
  const drift = (
    states: Partial<Record<Role, ObjectDrift['state']>>,
    differences: ObjectDrift['differences'] = [],
  ): ObjectDrift[] =>
    (Object.entries(states) as [Role, ObjectDrift['state']][]).map(([role, state]) => ({
      name: role,
      role,
      title: role,
      state,
      differences: state === 'differs' ? differences : [],
      notes: [],
    }));

  it('a changed source: the parsing view and the queue go first, the queue and its parsing view come back last', () => {
    const p = pipeline({ source: { topics: ['users', 'more'], consumerGroup: 'g2', initialOffset: 'latest' } });
    const live = parseCreateQuery(QUEUE('127.0.0.1:9092'));
    const plan = planChanges(
      p,
      drift({ queue: 'differs', parsedMv: 'unchanged' }, [{ text: 'x', fix: 'source' }]),
      undefined,
      live,
    );
    expect(plan.refused).toEqual([]);
    expect(plan.steps.map((s) => s.title)).toEqual([
      'consumer group g2: starts at the committed offsets of winnow_users',
      'drop view winnow_users_parsed_mv (consumption stops)',
      'drop table winnow_users_queue',
      'consumer group g2: the final offsets of winnow_users, now that its consumers left',
      'consumer group g2: reads more from the log end',
      'Kafka queue winnow_users_queue',
      'parsing view winnow_users_parsed_mv',
    ]);
  });

  it('a refused difference leaves no step, the most fundamental cause first', () => {
    const p = pipeline();
    const plan = planChanges(
      p,
      drift({ final: 'differs', seen: 'differs' }, [
        { text: 'ORDER BY a -> b', fix: 'refuse', cause: 'sink.orderBy' },
        { text: 'column b added', fix: 'refuse', cause: 'dedup.key' },
      ]),
      undefined,
    );
    expect(plan.steps).toEqual([]);
    expect(plan.refused.map((r) => `${r.object}: ${r.cause}`)).toEqual([
      'final: dedup.key',
      'seen: dedup.key',
      'final: sink.orderBy',
      'seen: sink.orderBy',
    ]);
  });
});
