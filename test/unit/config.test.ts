/**
 * Why one file over 300 lines: one subject (the configuration contract) through one reference example.
 *
 * The configuration contract (src/config): the reference example, defaults,
 * secrets, durations, redaction, and every rejected input with its message.
 *
 * Why ~360 lines in one file: it tests one public entry point
 * (src/config/index.ts) through one fixture (the minimal pipeline and
 * withChange below), and about a fifth of it is the table of rejected inputs,
 * one line per error message. The sections are short; splitting would only
 * spread the fixture over several files.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  DEFAULTS,
  formatDuration,
  loadConfigFile,
  parseConfig,
  parseDuration,
  redactConfig,
  resolveSecret,
  validateConfig,
  type WinnowConfig,
} from '../../src/config/index.ts';
import { WinnowError } from '../../src/errors.ts';

const examplePath = fileURLToPath(new URL('../../examples/users.yaml', import.meta.url));

/** The smallest valid pipeline; tests change one thing at a time. */
function minimal(): Record<string, unknown> {
  return {
    pipelines: [
      {
        name: 'users',
        source: { brokers: ['localhost:9092'], topics: ['users'] },
        columns: [{ name: 'event_id', type: 'UUID' }],
        dedup: { window: '1h' },
        sink: { table: 'users_dedup' },
      },
    ],
  };
}

type Doc = { [key: string]: unknown; pipelines: Record<string, unknown>[] };
function withChange(change: (doc: Doc) => void): string {
  const doc = minimal() as Doc;
  change(doc);
  return stringify(doc);
}
const p0 = (doc: Doc): Record<string, unknown> => doc.pipelines[0] ?? {};

/** The CONFIG_INVALID error `fn` throws. */
function configError(fn: () => unknown): WinnowError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WinnowError);
    expect((err as WinnowError).code).toBe('CONFIG_INVALID');
    return err as WinnowError;
  }
  throw new Error('expected a CONFIG_INVALID error, but the config was accepted');
}

const parse = (text: string, env: Record<string, string> = {}): WinnowConfig => parseConfig(text, 'winnow.yaml', env);

describe('examples/users.yaml', () => {
  it('parses to the reference scenario', async () => {
    const cfg = await loadConfigFile(examplePath, {});
    expect(cfg).toEqual({
      server: { port: 8080 },
      pipelines: [
        {
          name: 'users',
          source: {
            brokers: ['localhost:9093'],
            topics: ['users'],
            auth: { protocol: 'SASL_PLAINTEXT', mechanism: 'PLAIN', username: 'admin', password: 'admin-secret' },
            consumerGroup: 'winnow_users',
            initialOffset: 'earliest',
            consumers: 1,
          },
          columns: [
            { name: 'event_id', type: 'UUID', source: { kind: 'path', path: ['event_id'] }, optional: false },
            { name: 'user_id', type: 'UUID', source: { kind: 'path', path: ['user_id'] }, optional: false },
            { name: 'name', type: 'String', source: { kind: 'path', path: ['user_name'] }, optional: false },
            { name: 'email', type: 'String', source: { kind: 'path', path: ['user_email'] }, optional: false },
            {
              name: 'created_at',
              type: 'DateTime',
              source: { kind: 'path', path: ['created_at'] },
              optional: false,
            },
          ],
          dedup: { key: ['event_id'], windowMs: 3_600_000, time: { kind: 'kafka' }, index: 'scan' },
          sink: {
            url: 'http://localhost:8123',
            user: 'default',
            database: 'default',
            table: 'users_dedup',
            mode: 'create',
            engine: 'MergeTree',
            orderBy: ['event_id'],
          },
          schedule: { intervalMs: 1_000, maxSliceRows: 1_000_000, checkIntervalMs: 60_000 },
          api: {},
        },
      ],
    });
  });
});

describe('defaults', () => {
  it('fills every optional key', () => {
    const cfg = parse(stringify(minimal()));
    expect(cfg.server).toEqual({ port: DEFAULTS.server.port });
    const [p] = cfg.pipelines;
    expect(p?.source).toEqual({
      brokers: ['localhost:9092'],
      topics: ['users'],
      auth: { protocol: 'PLAINTEXT' },
      consumerGroup: 'winnow_users',
      initialOffset: 'earliest',
      consumers: 1,
    });
    expect(p?.columns).toEqual([
      { name: 'event_id', type: 'UUID', source: { kind: 'path', path: ['event_id'] }, optional: false },
    ]);
    expect(p?.dedup).toEqual({ key: ['event_id'], windowMs: 3_600_000, time: { kind: 'kafka' }, index: 'scan' });
    expect(p?.sink).toEqual({
      url: 'http://localhost:8123',
      user: 'default',
      database: 'default',
      table: 'users_dedup',
      mode: 'create',
      engine: 'MergeTree',
      orderBy: ['event_id'],
    });
    expect(p?.schedule).toEqual({ intervalMs: 1_000, maxSliceRows: 1_000_000, checkIntervalMs: 60_000 });
    expect(p?.api).toEqual({});
  });

  it('orders a created table by the dedup key unless told otherwise', () => {
    const cfg = parse(
      withChange((d) => {
        p0(d)['columns'] = [
          { name: 'tenant', type: 'String' },
          { name: 'id', type: 'UInt64' },
        ];
        p0(d)['dedup'] = { key: ['tenant', 'id'], window: '15m' };
      }),
    );
    expect(cfg.pipelines[0]?.sink.orderBy).toEqual(['tenant', 'id']);
  });

  it('reads the column source and time forms', () => {
    const cfg = parse(
      withChange((d) => {
        p0(d)['columns'] = [
          { name: 'event_id', type: 'UUID' },
          { name: 'city', type: 'LowCardinality(String)', path: 'user.address.city', optional: true },
          { name: 'odd', type: 'String', path: ['a.b', 'c'] },
          { name: 'ts', type: "DateTime64(3, 'UTC')", expr: 'fromUnixTimestamp64Milli(_timestamp_ms)' },
        ];
        p0(d)['dedup'] = { window: '1h30m', time: { column: 'ts' } };
      }),
    );
    const [p] = cfg.pipelines;
    expect(p?.columns.map((c) => c.source)).toEqual([
      { kind: 'path', path: ['event_id'] },
      { kind: 'path', path: ['user', 'address', 'city'] },
      { kind: 'path', path: ['a.b', 'c'] },
      { kind: 'expr', expr: 'fromUnixTimestamp64Milli(_timestamp_ms)' },
    ]);
    expect(p?.columns[1]?.optional).toBe(true);
    expect(p?.dedup).toMatchObject({ windowMs: 5_400_000, time: { kind: 'column', column: 'ts' } });
    const ingestion = parse(withChange((d) => (p0(d)['dedup'] = { window: '7d', time: 'ingestion' })));
    expect(ingestion.pipelines[0]?.dedup.time).toEqual({ kind: 'ingestion' });
    const rocks = parse(withChange((d) => (p0(d)['dedup'] = { window: '7d', index: 'rocksdb' })));
    expect(rocks.pipelines[0]?.dedup.index).toBe('rocksdb');
  });

  it('keeps env secrets as references and resolves them on demand', () => {
    const text = withChange((d) => {
      p0(d)['source'] = {
        brokers: ['kafka:9094'],
        topics: 'users',
        auth: {
          protocol: 'SASL_SSL',
          mechanism: 'SCRAM-SHA-512',
          username: 'winnow',
          password: { env: 'KAFKA_PASSWORD' },
        },
        tls: { ca: '/etc/ssl/ca.pem' },
      };
    });
    const env = { KAFKA_PASSWORD: 's3cret' };
    const auth = parse(text, env).pipelines[0]?.source.auth;
    expect(auth?.password).toEqual({ env: 'KAFKA_PASSWORD' });
    expect(resolveSecret(auth?.password ?? '', env)).toBe('s3cret');
    expect(resolveSecret('literal', {})).toBe('literal');
    const err = configError(() => resolveSecret({ env: 'GONE' }, {}, 'pipelines[0].sink.password'));
    expect(err.message).toContain('GONE');
    expect(err.message).toContain('pipelines[0].sink.password');
  });

  it('validates an object that did not come from YAML', () => {
    expect(validateConfig(minimal(), 'inline', {}).pipelines[0]?.name).toBe('users');
  });
});

describe('rejected input names the key and the expected form', () => {
  const cases: [string, (d: Doc) => void, string][] = [
    ['unknown top-level key', (d) => (d['pipeline'] = []), 'at pipeline: unknown key (did you mean "pipelines"?)'],
    ['unknown pipeline key', (d) => (p0(d)['windows'] = '1h'), 'at pipelines[0].windows: unknown key'],
    [
      'unknown key two levels down',
      (d) => (p0(d)['dedup'] = { window: '1h', windw: '2h' }),
      'at pipelines[0].dedup.windw: unknown key (did you mean "window"?)',
    ],
    [
      'unknown key three levels down',
      (d) => (p0(d)['source'] = { brokers: ['k:1'], topics: ['t'], auth: { protocol: 'PLAINTEXT', user: 'x' } }),
      'at pipelines[0].source.auth.user: unknown key; expected one of protocol, mechanism, username, password',
    ],
    [
      'unknown column key',
      (d) => (p0(d)['columns'] = [{ name: 'event_id', type: 'UUID', nullable: true }]),
      'at pipelines[0].columns[0].nullable: unknown key',
    ],
    [
      'bad duration',
      (d) => (p0(d)['dedup'] = { window: '1 hour' }),
      'at pipelines[0].dedup.window: expected a duration like 90s, 15m, 1h or 7d, got "1 hour"',
    ],
    [
      'duration without unit',
      (d) => (p0(d)['dedup'] = { window: 3600 }),
      'at pipelines[0].dedup.window: expected a duration like 90s, 15m, 1h or 7d, got 3600',
    ],
    [
      'window over 30 days',
      (d) => (p0(d)['dedup'] = { window: '31d' }),
      'at pipelines[0].dedup.window: expected a duration of at most 30d, got "31d"',
    ],
    [
      'unknown seen-key index',
      (d) => (p0(d)['dedup'] = { window: '1h', index: 'lsm' }),
      'at pipelines[0].dedup.index: expected one of scan, rocksdb, got "lsm"',
    ],
    [
      'zero window',
      (d) => (p0(d)['dedup'] = { window: '0s' }),
      'at pipelines[0].dedup.window: expected a duration above 0s',
    ],
    [
      'tick below 100ms',
      (d) => (p0(d)['schedule'] = { interval: '50ms' }),
      'at pipelines[0].schedule.interval: expected a duration of at least 100ms, got "50ms"',
    ],
    [
      'too many consumers',
      (d) => (p0(d)['source'] = { brokers: ['k:1'], topics: ['t'], consumers: 17 }),
      'at pipelines[0].source.consumers: expected an integer from 1 to 16, got 17',
    ],
    [
      'key naming a missing column',
      (d) => (p0(d)['dedup'] = { window: '1h', key: ['event_id', 'user_id'] }),
      'at pipelines[0].dedup.key[1]: expected the name of a column (event_id), got "user_id"',
    ],
    [
      'default key without its column',
      (d) => (p0(d)['columns'] = [{ name: 'id', type: 'UUID' }]),
      'at pipelines[0].dedup.key[0]: expected the name of a column (id), got "event_id"',
    ],
    [
      'duplicate column names',
      (d) =>
        (p0(d)['columns'] = [
          { name: 'event_id', type: 'UUID' },
          { name: 'event_id', type: 'String' },
        ]),
      'at pipelines[0].columns[1].name: duplicate column name "event_id"',
    ],
    [
      'reserved column name',
      (d) =>
        (p0(d)['columns'] = [
          { name: 'event_id', type: 'UUID' },
          { name: '_offset', type: 'UInt64' },
        ]),
      'at pipelines[0].columns[1].name: "_offset" is reserved',
    ],
    [
      "column name in winnow's __v_ namespace",
      (d) =>
        (p0(d)['columns'] = [
          { name: 'event_id', type: 'UUID' },
          { name: '__v_x', type: 'String' },
        ]),
      'at pipelines[0].columns[1].name: "__v_x" is reserved (_topic, _key, _offset, _partition, _timestamp, _timestamp_ms, _headers, _raw, _raw_message, _error, _ingested_at, __t, __slice, __error, __h, __at, __repair, __found, __copies, __saved_at, and names starting with __v_); rename the column',
    ],
    [
      'duplicate pipeline names',
      (d) => d.pipelines.push({ ...p0(d), sink: { table: 'other' } }),
      'at pipelines[1].name: duplicate pipeline name "users"',
    ],
    [
      'two pipelines, one table',
      (d) => d.pipelines.push({ ...p0(d), name: 'users2' }),
      'at pipelines[1].sink.table: table "users_dedup" is already the sink of pipelines[0]',
    ],
    [
      'bad table identifier',
      (d) => (p0(d)['sink'] = { table: 'users-dedup' }),
      'at pipelines[0].sink.table: expected a table name: letters, digits and _, not starting with a digit, got "users-dedup"',
    ],
    [
      'bad column identifier',
      (d) => (p0(d)['columns'] = [{ name: 'event id', type: 'UUID' }]),
      'at pipelines[0].columns[0].name: expected a column name',
    ],
    ['bad pipeline name', (d) => (p0(d)['name'] = 'Users'), 'at pipelines[0].name: expected a pipeline name'],
    [
      'bad topic name',
      (d) => (p0(d)['source'] = { brokers: ['k:1'], topics: ['a b'] }),
      'at pipelines[0].source.topics[0]: expected a Kafka topic name',
    ],
    [
      'broker without port',
      (d) => (p0(d)['source'] = { brokers: ['kafka'], topics: ['t'] }),
      'at pipelines[0].source.brokers[0]: expected a broker address host:port',
    ],
    [
      'bad ClickHouse type',
      (d) => (p0(d)['columns'] = [{ name: 'event_id', type: 'UUID NOT NULL' }]),
      'at pipelines[0].columns[0].type: "UUID NOT NULL": ' +
        '"NOT NULL" after UUID is not part of a type (give one ClickHouse type',
    ],
    ['missing required key', (d) => delete p0(d)['sink'], 'at pipelines[0].sink: required; expected a mapping'],
    [
      'no pipelines',
      (d) => (d.pipelines = []),
      'at pipelines: expected a non-empty list of pipelines, got an empty list',
    ],
    [
      'bad enum',
      (d) => (p0(d)['sink'] = { table: 't', mode: 'replace' }),
      'at pipelines[0].sink.mode: expected one of create, adopt, got "replace"',
    ],
    [
      'non-http sink',
      (d) => (p0(d)['sink'] = { table: 't', url: 'tcp://ch:9000' }),
      'at pipelines[0].sink.url: expected an http(s) URL',
    ],
    [
      'credentials in the sink URL',
      (d) => (p0(d)['sink'] = { table: 't', url: 'http://u:p@ch:8123' }),
      'at pipelines[0].sink.url: expected an http(s) URL like http://localhost:8123, without credentials',
    ],
    [
      'SASL without username',
      (d) =>
        (p0(d)['source'] = {
          brokers: ['k:1'],
          topics: ['t'],
          auth: { protocol: 'SASL_PLAINTEXT', mechanism: 'PLAIN', password: 'x' },
        }),
      'at pipelines[0].source.auth.username: required with protocol SASL_PLAINTEXT; expected a user name',
    ],
    [
      'mechanism without SASL',
      (d) => (p0(d)['source'] = { brokers: ['k:1'], topics: ['t'], auth: { mechanism: 'PLAIN' } }),
      'at pipelines[0].source.auth.mechanism: only allowed with protocol SASL_PLAINTEXT or SASL_SSL, not PLAINTEXT',
    ],
    [
      'TLS without SSL',
      (d) => (p0(d)['source'] = { brokers: ['k:1'], topics: ['t'], tls: { ca: 'ca.pem' } }),
      'at pipelines[0].source.tls: only allowed with protocol SSL or SASL_SSL',
    ],
    [
      'time.column not a column',
      (d) => (p0(d)['dedup'] = { window: '1h', time: { column: 'created_at' } }),
      'at pipelines[0].dedup.time.column: expected the name of a column (event_id), got "created_at"',
    ],
    [
      'time.column not a time',
      (d) => {
        p0(d)['columns'] = [
          { name: 'event_id', type: 'UUID' },
          { name: 'created_at', type: 'String' },
        ];
        p0(d)['dedup'] = { window: '1h', time: { column: 'created_at' } };
      },
      'at pipelines[0].dedup.time.column: expected a column of type Date, Date32, DateTime or DateTime64, got "created_at" of type String',
    ],
    [
      'bad time',
      (d) => (p0(d)['dedup'] = { window: '1h', time: 'event' }),
      'at pipelines[0].dedup.time: expected kafka, ingestion or { column:',
    ],
    [
      'both path and expr',
      (d) =>
        (p0(d)['columns'] = [{ name: 'event_id', type: 'UUID', path: 'id', expr: "JSONExtractString(_raw, 'id')" }]),
      'at pipelines[0].columns[0].expr: give either path or expr, not both',
    ],
    [
      'orderBy naming a missing column',
      (d) => (p0(d)['sink'] = { table: 't', orderBy: ['ts'] }),
      'at pipelines[0].sink.orderBy[0]: expected the name of a column (event_id), got "ts"',
    ],
    [
      'optional key column',
      (d) => (p0(d)['columns'] = [{ name: 'event_id', type: 'UUID', optional: true }]),
      'at pipelines[0].dedup.key[0]: column "event_id" is optional',
    ],
  ];

  it.each(cases)('%s', (_name, change, expected) => {
    const err = configError(() => parse(withChange(change)));
    expect(err.message).toContain(`config error in winnow.yaml ${expected}`);
    expect(err.hint).toContain('winnow.yaml');
  });

  it('reports a missing environment variable with the key that names it', () => {
    const text = withChange((d) => (p0(d)['sink'] = { table: 't', password: { env: 'CLICKHOUSE_PASSWORD' } }));
    const err = configError(() => parse(text, {}));
    expect(err.message).toBe(
      'config error in winnow.yaml at pipelines[0].sink.password: environment variable CLICKHOUSE_PASSWORD is not set',
    );
    expect(parse(text, { CLICKHOUSE_PASSWORD: '' }).pipelines[0]?.sink.password).toEqual({
      env: 'CLICKHOUSE_PASSWORD',
    });
  });

  it('never echoes a secret value', () => {
    const err = configError(() => parse(withChange((d) => (p0(d)['api'] = { replayToken: 987654321 }))));
    expect(err.message).toContain('at pipelines[0].api.replayToken: expected a non-empty string or { env: NAME }');
    expect(err.message).not.toContain('987654321');
  });

  it('collects every problem, one line each', () => {
    const text = withChange((d) => {
      d['server'] = { port: -1 };
      p0(d)['dedup'] = { window: '1 hour', key: ['nope'] };
      p0(d)['sink'] = { table: 'users-dedup', colour: 'blue' };
    });
    const lines = configError(() => parse(text)).message.split('\n');
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(line).toMatch(/^config error in winnow\.yaml at \S+: /);
    expect(lines.map((l) => l.split(' ')[5])).toEqual(
      expect.arrayContaining([
        'server.port:',
        'pipelines[0].dedup.window:',
        'pipelines[0].dedup.key[0]:',
        'pipelines[0].sink.table:',
        'pipelines[0].sink.colour:',
      ]),
    );
  });

  it('names line and column of a YAML syntax error', () => {
    const err = configError(() => parse('pipelines:\n  - name: users\n    source: [a, b\n'));
    expect(err.message).toMatch(/^config error in winnow\.yaml at line \d+, column \d+: YAML syntax: /);
    const dup = configError(() => parse('server: {}\nserver: {}\n'));
    expect(dup.message).toBe('config error in winnow.yaml at line 2, column 1: YAML syntax: Map keys must be unique');
  });

  it('reports an empty file and an unreadable path', async () => {
    expect(configError(() => parse('# nothing\n')).message).toContain('at (top level): the file is empty');
    await expect(loadConfigFile('/nonexistent/winnow.yaml', {})).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('/nonexistent/winnow.yaml') as unknown,
    });
  });
});

describe('trusted SQL: static checks of type, expr, sink.engine and sink.partitionBy', () => {
  const column = (c: Record<string, unknown>) => (d: Doc) =>
    (p0(d)['columns'] = [
      { name: 'event_id', type: 'UUID' },
      { name: 'x', ...c },
    ]);
  const sink = (s: Record<string, unknown>) => (d: Doc) => (p0(d)['sink'] = { table: 't', ...s });

  it.each([
    ['types', column({ type: "DateTime64(3, 'UTC')" })],
    ['types', column({ type: "Enum8('a;b' = 1, 'it''s' = -2)" })],
    ['types', column({ type: 'Map(String, Array(Nullable(UInt64)))' })],
    ['types', column({ type: 'Tuple(a String, b LowCardinality(Nullable(String)))' })],
    ['types', column({ type: 'Decimal(10, 2)' })],
    ['expressions', column({ type: 'String', expr: "JSONExtractString(_raw, 'a;b -- not a comment')" })],
    [
      'expressions',
      column({ type: 'Array(UInt64)', expr: "arrayMap(x -> x * 2, [1, 2, JSONExtractUInt(_raw, 'n')])" }),
    ],
    ['expressions', column({ type: 'String', expr: "concat('it\\'s', `_topic`, \"_key\")" })],
    ['expressions', column({ type: 'UInt64', expr: 'toYear(now()) - 2000' })],
    ['engines', sink({ engine: 'MergeTree()' })],
    ['engines', sink({ engine: "ReplicatedMergeTree('/clickhouse/tables/{shard}/events', '{replica}')" })],
    ['engines', sink({ engine: 'SharedMergeTree' })],
    ['partition keys', sink({ partitionBy: 'toYYYYMM(event_time)' })],
    ['partition keys', sink({ partitionBy: '(toYYYYMM(event_time), cityHash64(event_id) % 4)' })],
  ])('accepts well-formed %s', (_what, change) => {
    expect(() => parse(withChange(change))).not.toThrow();
  });

  const TYPE = '(give one ClickHouse type like String, DateTime64(3) or Nullable(Int64))';
  const ENGINE = "(use MergeTree, or ReplicatedMergeTree('/path/{shard}', '{replica}') on a cluster)";
  const cases: [string, (d: Doc) => void, string][] = [
    [
      'a column list injected through a type',
      column({ type: 'Nullable(String), evil String DEFAULT currentUser(), x Nullable(String)' }),
      `at pipelines[0].columns[1].type: "Nullable(String), evil String DEFAULT currentUser(), x Nu...": ` +
        `the "," after Nullable(String) starts another column definition ${TYPE}`,
    ],
    [
      'a comment after a type',
      column({ type: 'String -- x' }),
      'at pipelines[0].columns[1].type: "String -- x": -- starts an SQL comment (remove the comment)',
    ],
    [
      'an unclosed type',
      column({ type: 'Nullable(String' }),
      'at pipelines[0].columns[1].type: "Nullable(String": an open "(" is never closed (balance the brackets)',
    ],
    [
      'a statement after a type',
      column({ type: 'String; DROP TABLE t' }),
      `at pipelines[0].columns[1].type: "String; DROP TABLE t": ";" would end the statement (remove the ";"`,
    ],
    [
      'a type without a name',
      column({ type: '(String)' }),
      `at pipelines[0].columns[1].type: "(String)": a type starts with a name ${TYPE}`,
    ],
    [
      'an expression that closes its parentheses',
      column({ type: 'String', expr: "JSONExtractString(_raw, 'id')) AS x, (currentUser()" }),
      `at pipelines[0].columns[1].expr: "JSONExtractString(_raw, 'id')) AS x, (currentUser()": ` +
        `")" at character 30 closes a bracket that was never opened (balance the brackets)`,
    ],
    [
      'an unclosed string',
      column({ type: 'String', expr: "concat('a, _raw)" }),
      'at pipelines[0].columns[1].expr: "concat(\'a, _raw)": the quote \' at character 8 is never closed',
    ],
    [
      'a block comment',
      column({ type: 'String', expr: '_raw /* x */' }),
      'at pipelines[0].columns[1].expr: "_raw /* x */": /* starts an SQL comment (remove the comment)',
    ],
    [
      'a hash comment',
      column({ type: 'String', expr: '_raw # x' }),
      'at pipelines[0].columns[1].expr: "_raw # x": # starts an SQL comment',
    ],
    [
      'a subquery',
      column({ type: 'String', expr: '(SELECT name FROM system.users LIMIT 1)' }),
      'at pipelines[0].columns[1].expr: "(SELECT name FROM system.users LIMIT 1)": ' +
        'SELECT starts a subquery, which is not allowed here',
    ],
    [
      'a heredoc string',
      column({ type: 'String', expr: '$$x$$' }),
      'at pipelines[0].columns[1].expr: "$$x$$": "$" (a heredoc string $$...$$) is not allowed here',
    ],
    [
      'a query parameter',
      column({ type: 'String', expr: '{p:String}' }),
      'at pipelines[0].columns[1].expr: "{p:String}": "{" (a query parameter or map literal) is not allowed here',
    ],
    [
      'an empty expression',
      column({ type: 'String', expr: '  ' }),
      'at pipelines[0].columns[1].expr: "  ": it is empty',
    ],
    [
      'a URL engine',
      sink({ engine: "URL('http://127.0.0.1:1/x', JSONEachRow)" }),
      `at pipelines[0].sink.engine: "URL('http://127.0.0.1:1/x', JSONEachRow)": ` +
        'engine URL is not a MergeTree engine, which insert deduplication needs' +
        ` (a table engine reading from elsewhere is never allowed) ${ENGINE}`,
    ],
    [
      'a Kafka engine',
      sink({ engine: 'Kafka' }),
      'at pipelines[0].sink.engine: "Kafka": engine Kafka is not a MergeTree engine',
    ],
    [
      'a merging engine',
      sink({ engine: 'ReplacingMergeTree' }),
      'at pipelines[0].sink.engine: "ReplacingMergeTree": engine ReplacingMergeTree changes rows when parts merge',
    ],
    [
      'clauses after the engine',
      sink({ engine: 'MergeTree TTL now()' }),
      'at pipelines[0].sink.engine: "MergeTree TTL now()": "TTL now()" after MergeTree is not part of an engine',
    ],
    [
      'a function in engine arguments',
      sink({ engine: "ReplicatedMergeTree(concat('/x/', currentUser()), 'r')" }),
      `at pipelines[0].sink.engine: "ReplicatedMergeTree(concat('/x/', currentUser()), 'r')": ` +
        `the engine arguments call concat(); only literals and names are allowed ${ENGINE}`,
    ],
    [
      'a statement after the partition key',
      sink({ partitionBy: 'toYYYYMM(event_time); DROP TABLE users' }),
      'at pipelines[0].sink.partitionBy: "toYYYYMM(event_time); DROP TABLE users": ' +
        '";" would end the statement (remove the ";" and what follows it)',
    ],
    [
      'a comment in the partition key',
      sink({ partitionBy: 'toYYYYMM(t) -- x' }),
      'at pipelines[0].sink.partitionBy: "toYYYYMM(t) -- x": -- starts an SQL comment',
    ],
    [
      'a subquery in the partition key',
      sink({ partitionBy: 'tuple((WITH 1 AS x SELECT x))' }),
      'at pipelines[0].sink.partitionBy: "tuple((WITH 1 AS x SELECT x))": WITH starts a subquery',
    ],
  ];

  it.each(cases)('refuses %s, naming the key, the value, the problem and the fix', (_name, change, expected) => {
    const err = configError(() => parse(withChange(change)));
    expect(err.message).toContain(`config error in winnow.yaml ${expected}`);
    expect(err.message.split('\n')).toHaveLength(1);
  });
});

describe('redactConfig', () => {
  it('hides every secret and leaves the original alone', async () => {
    const cfg = await loadConfigFile(examplePath, {});
    const p = cfg.pipelines[0];
    if (!p) throw new Error('no pipeline');
    p.sink.password = { env: 'CLICKHOUSE_PASSWORD' };
    p.api.replayToken = 'token-123';
    const redacted = redactConfig(cfg);
    const text = JSON.stringify(redacted);
    expect(text).not.toContain('admin-secret');
    expect(text).not.toContain('token-123');
    expect(text).not.toContain('CLICKHOUSE_PASSWORD');
    expect(redacted.pipelines[0]?.source.auth.password).toBe('***');
    expect(redacted.pipelines[0]?.sink.password).toBe('***');
    expect(redacted.pipelines[0]?.api.replayToken).toBe('***');
    expect(redacted.pipelines[0]?.source.auth.username).toBe('admin');
    expect(p.source.auth.password).toBe('admin-secret');
  });
});

describe('durations', () => {
  it.each([
    ['250ms', 250],
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1h30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
    ['0s', 0],
  ])('parses %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it.each(['', '1 hour', '1.5h', '-1s', '1', 'h', '30m1h', '1h1h', '1w', ' 1h', '99999999999999999d'])(
    'rejects %j',
    (text) => {
      const err = configError(() => parseDuration(text));
      expect(err.message).toBe(`expected a duration like 90s, 15m, 1h or 7d, got ${JSON.stringify(text)}`);
    },
  );

  it('formats to the shortest form', () => {
    expect(formatDuration(5_400_000)).toBe('1h30m');
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(1_500)).toBe('1s500ms');
    expect(formatDuration(30 * 86_400_000)).toBe('30d');
  });
});
