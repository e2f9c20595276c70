/**
 * Why one file over 300 lines: the drift test of the frozen migrations and its fixtures (old layouts written out literally).
 *
 * Frozen migrations against the live builders (CONTRIBUTING.md). For a
 * composite-key pipeline and for the example configuration, `migrate up`
 * through every migration in order builds exactly what the live builders
 * build in a second fresh database: the same objects, and the same SHOW CREATE
 * of each, the database name aside. (0002 is frozen as it last shipped, so a
 * database whose 0002 ran in that version is what a new install builds.)
 * Databases built by older winnows end the same: one whose 0002 ran as first
 * shipped (two views parsing the queue, no flush interval, seen keys without
 * hash and write time; built here from literal SQL, since 0002 no longer
 * renders it), and one whose history holds 0005 under its first name
 * 0005_seen_hash_and_kept_counts, which counts as 0005 (not as a migration of
 * a newer winnow) and whose kept counts 0009 drops; down forgets that name too.
 * After the migrations, `migrate plan` (src/provisioning/drift.ts) finds every
 * object as the builders build it (and `up` changes nothing more).
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { qualified, quoteString } from '../../src/clickhouse/sql.ts';
import { validateConfig, type PipelineConfig } from '../../src/config/index.ts';
import { migrations } from '../../src/provisioning/migrations/index.ts';
import { Migrator } from '../../src/provisioning/migrator.ts';
import { latestStatements, objectNames } from '../../src/provisioning/objects.ts';
import { freshDatabase, servers, uniqueName } from '../support/helpers.ts';

const quiet = { dryRun: false, print: () => undefined } as const;

async function newDatabase(prefix: string): Promise<string> {
  const { name, client } = await freshDatabase(prefix);
  await client.close();
  return name;
}

/** Every object at its latest version, as the live builders render it (what a change to the schema edits). */
function liveStatements(p: PipelineConfig, kafkaPassword: string | undefined): string[] {
  const opts = { createFinal: p.sink.mode === 'create', ...(kafkaPassword === undefined ? {} : { kafkaPassword }) };
  return latestStatements(p, opts).map((s) => s.sql);
}

/** SHOW CREATE of every table and view of the database but the migration history, the database named `<db>`. */
async function schema(client: Db, db: string): Promise<Record<string, string>> {
  const tables = await client.rows<{ name: string }>(
    `SELECT name FROM system.tables WHERE database = {db:String} AND NOT startsWith(name, 'winnow_migrations_') ORDER BY name`,
    { db },
  );
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    const rows = await client.rows<{ statement: string }>(`SHOW CREATE TABLE ${qualified(db, name)}`);
    out[name] = (rows[0]?.statement ?? '').replaceAll(db, '<db>');
  }
  return out;
}

/** The live builders' statements run in a fresh database; its schema. */
async function liveSchema(
  client: Db,
  config: (db: string) => PipelineConfig,
  kafkaPassword: string | undefined,
): Promise<Record<string, string>> {
  const db = await newDatabase('winnow_live');
  for (const sql of liveStatements(config(db), kafkaPassword)) await client.command(sql);
  const out = await schema(client, db);
  await stopConsuming(client, config(db));
  return out;
}

/** Tests leave their databases for inspection; their Kafka queues need not keep polling. */
async function stopConsuming(client: Db, p: PipelineConfig): Promise<void> {
  const n = objectNames(p);
  await client.command(`DROP VIEW IF EXISTS ${qualified(n.database, n.parsedMv)} SYNC`);
  await client.command(`DROP TABLE IF EXISTS ${qualified(n.database, n.queue)} SYNC`);
}

function compositeKeyPipeline(
  name: string,
  topic: string,
  group: string,
  index: 'scan' | 'rocksdb' = 'scan',
): (db: string) => PipelineConfig {
  const s = servers();
  return (db) =>
    validateConfig(
      {
        pipelines: [
          {
            name,
            source: { brokers: s.kafkaBrokersForClickHouse, topics: [topic], consumerGroup: group, consumers: 2 },
            columns: [
              { name: 'tenant', type: 'LowCardinality(String)' },
              { name: 'order_id', type: 'UInt64', path: 'order.id' },
              { name: 'amount', type: 'Nullable(Decimal(18, 2))' },
              { name: 'tags', type: 'Array(String)', optional: true },
              { name: 'at', type: "DateTime64(3, 'UTC')" },
              { name: 'src', type: 'String', expr: "concat(_topic, ':', toString(_partition))" },
            ],
            dedup: { key: ['tenant', 'order_id'], window: '2h30m', time: { column: 'at' }, index },
            sink: {
              url: s.clickhouseUrl,
              database: db,
              table: 'orders',
              partitionBy: 'toYYYYMM(at)',
              orderBy: ['tenant', 'order_id', 'at'],
            },
          },
        ],
      },
      'test',
      {},
    ).pipelines[0]!;
}

/** examples/users.yaml as it stands, with the test's servers, database, topic and consumer group. */
async function examplePipeline(topic: string, group: string): Promise<(db: string) => PipelineConfig> {
  const s = servers();
  const raw = parseYaml(await readFile(new URL('../../examples/users.yaml', import.meta.url), 'utf8')) as {
    pipelines: { source: Record<string, unknown>; sink: Record<string, unknown> }[];
  };
  return (db) => {
    const doc = structuredClone(raw);
    const pipeline = doc.pipelines[0]!;
    Object.assign(pipeline.source, { topics: [topic], consumerGroup: group });
    // The SASL listener when the servers have one, as in the reference scenario.
    if (s.kafkaSaslBrokers.length > 0) pipeline.source['brokers'] = s.kafkaSaslBrokers;
    Object.assign(pipeline.sink, { url: s.clickhouseUrl, database: db });
    return validateConfig(doc, 'examples/users.yaml', {}).pipelines[0]!;
  };
}

function kafkaPassword(p: PipelineConfig): string | undefined {
  const pw = p.source.auth.password;
  return typeof pw === 'string' ? pw : undefined;
}

describe('every migration in order builds what the live builders build', () => {
  const cases: [string, () => Promise<(db: string) => PipelineConfig>, number][] = [
    [
      'a composite key, event time, partitioned final table',
      () => Promise.resolve(compositeKeyPipeline(uniqueName('orders'), uniqueName('orders'), uniqueName('g'))),
      20,
    ],
    ['the example configuration (SASL source)', () => examplePipeline(uniqueName('users'), uniqueName('g')), 20],
    [
      'a composite key with the RocksDB seen-key index (0013, 0014)',
      () =>
        Promise.resolve(compositeKeyPipeline(uniqueName('orders'), uniqueName('orders'), uniqueName('g'), 'rocksdb')),
      22,
    ],
  ];
  it.each(cases)('%s', async (_what, make, objects) => {
    const config = await make();
    const client = connect({ url: servers().clickhouseUrl });
    try {
      const db = await newDatabase('winnow_chain');
      const p = config(db);
      const done = await new Migrator(client, p).up({ ...quiet, kafkaPassword: kafkaPassword(p) });
      expect(done.at(-1)).toBe(migrations.at(-1)?.name);
      // `migrate plan` compares the same way and finds nothing to change.
      const plan = await new Migrator(client, p).plan(kafkaPassword(p));
      expect(plan.objects.filter((o) => o.state !== 'unchanged')).toEqual([]);
      expect(plan.changes).toEqual({ steps: [], refused: [] });
      const chain = await schema(client, db);
      await stopConsuming(client, p);
      const live = await liveSchema(client, config, kafkaPassword(p));
      // The final table, 11 more objects of the pipeline (12 with the seen-key index), 6 tables its
      // database's pipelines share, 2 repair copies.
      expect(Object.keys(live)).toHaveLength(objects);
      expect(Object.keys(chain)).toEqual(Object.keys(live));
      for (const name of Object.keys(live)) expect(chain[name], name).toBe(live[name]);
    } finally {
      await client.close();
    }
  });
});

describe('databases built by older winnows', () => {
  it('one whose 0002 ran as first shipped goes through 0009 to the same schema', async () => {
    const config = compositeKeyPipeline(uniqueName('old2'), uniqueName('old2'), uniqueName('g'));
    const client = connect({ url: servers().clickhouseUrl });
    try {
      const db = await newDatabase('winnow_old2');
      const p = config(db);
      const migrator = new Migrator(client, p);
      await migrator.up({ ...quiet, kafkaPassword: undefined, to: '0001_slices' });
      for (const sql of firstShipped0002(p)) await client.command(sql);
      await client.command(
        `INSERT INTO ${qualified(db, `winnow_migrations_${p.name}`)} (name) VALUES ('0002_pipeline_objects')`,
      );
      expect(await migrator.up({ ...quiet, kafkaPassword: undefined })).toEqual([
        '0003_leases',
        '0004_replays_and_checks',
        '0005_seen_hash_and_write_time',
        '0006_slices_deduplication',
        '0007_slice_refusals',
        '0008_repairs',
        '0009_parse_once_and_queue_flush',
        '0010_lease_release',
        '0011_refuse_empty_keys',
        '0012_replay_jobs',
        '0013_seen_kv',
        '0014_seen_kv_view',
        '0015_seen_kv_carried_entry',
      ]);
      const upgraded = await schema(client, db);
      await stopConsuming(client, p);
      expect(upgraded).toEqual(await liveSchema(client, config, undefined));
    } finally {
      await client.close();
    }
  });

  it('one whose history holds 0005_seen_hash_and_kept_counts counts it as 0005, loses its kept counts, and forgets the name on down', async () => {
    const config = compositeKeyPipeline(uniqueName('old5'), uniqueName('old5'), uniqueName('g'));
    const client = connect({ url: servers().clickhouseUrl });
    try {
      const db = await newDatabase('winnow_old5');
      const p = config(db);
      const n = objectNames(p);
      const history = qualified(db, `winnow_migrations_${p.name}`);
      const migrator = new Migrator(client, p);
      await migrator.up({ ...quiet, kafkaPassword: undefined, to: '0004_replays_and_checks' });
      // What 0005 did under its first name (3234234): the seen-keys upgrade, and kept counts
      // written by a third view of the dedup entry point.
      const seen = qualified(db, n.seen);
      const counts = qualified(db, `winnow_${p.name}_kept_counts`);
      for (const sql of [
        `ALTER TABLE ${seen} ADD COLUMN IF NOT EXISTS \`__h\` UInt64 MATERIALIZED sipHash64(\`tenant\`, \`order_id\`)`,
        `ALTER TABLE ${seen} ADD COLUMN IF NOT EXISTS \`__at\` DateTime DEFAULT now()`,
        `ALTER TABLE ${seen} MODIFY TTL greatest(toDateTime(\`__t\`), \`__at\`) + INTERVAL 18000 SECOND SETTINGS materialize_ttl_after_modify = 0`,
        `CREATE TABLE IF NOT EXISTS ${counts}\n(\n    \`__slice\` String,\n    \`kept\` UInt64,\n    \`at\` DateTime DEFAULT now()\n)
ENGINE = MergeTree\nORDER BY (\`__slice\`)\nTTL \`at\` + INTERVAL 172800 SECOND\nSETTINGS non_replicated_deduplication_window = 10000`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${qualified(db, `winnow_${p.name}_kept_to_counts_mv`)} TO ${counts}
AS SELECT \`__slice\`, count() AS \`kept\` FROM ${qualified(db, n.kept)} GROUP BY \`__slice\``,
      ]) {
        await client.command(sql);
      }
      await client.command(`INSERT INTO ${history} (name) VALUES ('0005_seen_hash_and_kept_counts')`);

      const status = await migrator.status();
      expect(status.filter((m) => m.executed).map((m) => m.name)).toContain('0005_seen_hash_and_write_time');
      expect(await migrator.up({ ...quiet, kafkaPassword: undefined })).toEqual([
        '0006_slices_deduplication',
        '0007_slice_refusals',
        '0008_repairs',
        '0009_parse_once_and_queue_flush',
        '0010_lease_release',
        '0011_refuse_empty_keys',
        '0012_replay_jobs',
        '0013_seen_kv',
        '0014_seen_kv_view',
        '0015_seen_kv_carried_entry',
      ]);
      const upgraded = await schema(client, db);
      await stopConsuming(client, p);
      expect(upgraded).toEqual(await liveSchema(client, config, undefined));

      const reverted = await migrator.down({ ...quiet, kafkaPassword: undefined });
      expect(reverted).toContain('0005_seen_hash_and_write_time');
      const left = await client.rows<{ name: string }>(`SELECT name FROM ${history} FINAL`);
      expect(left).toEqual([]);
      // Down leaves the final table and the tables the database's pipelines share, nothing of the pipeline.
      const tables = await client.rows<{ name: string }>(
        `SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name`,
        { db },
      );
      expect(tables.map((t) => t.name)).toEqual([
        'orders',
        'winnow_checks',
        'winnow_leases',
        `winnow_migrations_${p.name}`,
        'winnow_repairs',
        'winnow_replay_jobs',
        'winnow_replays',
        'winnow_slices',
      ]);
    } finally {
      await client.close();
    }
  });
});

/**
 * What 0002 built as it first shipped (ad4a3ad) for `compositeKeyPipeline`, as
 * literal SQL: only the database, pipeline name, brokers, topic and consumer
 * group come from `p`. The Kafka queue (no flush interval) is created before
 * the two views that each parse it again; seen keys have neither key hash nor
 * write time and expire from `__t`.
 */
function firstShipped0002(p: PipelineConfig): string[] {
  const o = (suffix: string): string => qualified(p.sink.database, `winnow_${p.name}_${suffix}`);
  const final = qualified(p.sink.database, 'orders');
  const validated = `SELECT
    CAST(ifNull(\`__v_tenant\`, defaultValueOfTypeName('String')), 'LowCardinality(String)') AS \`tenant\`,
    CAST(ifNull(\`__v_order_id\`, defaultValueOfTypeName('UInt64')), 'UInt64') AS \`order_id\`,
    CAST(\`__v_amount\`, 'Nullable(Decimal(18, 2))') AS \`amount\`,
    \`__v_tags\` AS \`tags\`,
    CAST(ifNull(\`__v_at\`, defaultValueOfTypeName('DateTime64(3, \\'UTC\\')')), 'DateTime64(3, \\'UTC\\')') AS \`at\`,
    CAST(ifNull(\`__v_src\`, defaultValueOfTypeName('String')), 'String') AS \`src\`,
    toDateTime64(ifNull(\`__v_at\`, toDateTime64(0, 3)), 3, 'UTC') AS \`__t\`,
    \`_raw\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`,
    \`__error\`
FROM
(
    SELECT
        \`_raw\`,
        _topic AS \`_topic\`,
        toUInt32(_partition) AS \`_partition\`,
        _offset AS \`_offset\`,
        _timestamp_ms AS \`_timestamp_ms\`,
        now64(3) AS \`_ingested_at\`,
        multiIf(JSONType(_raw, 'tenant') = 'String', accurateCastOrNull(JSONExtractString(_raw, 'tenant'), 'String'), NULL) AS \`__v_tenant\`,
        multiIf(JSONType(_raw, 'order', 'id') IN ('Int64', 'UInt64', 'Double'), accurateCastOrNull(JSONExtractRaw(_raw, 'order', 'id'), 'UInt64'), NULL) AS \`__v_order_id\`,
        multiIf(JSONType(_raw, 'amount') IN ('Int64', 'UInt64', 'Double'), accurateCastOrNull(JSONExtractRaw(_raw, 'amount'), 'Decimal(18, 2)'), NULL) AS \`__v_amount\`,
        JSONExtract(_raw, 'tags', 'Array(String)') AS \`__v_tags\`,
        multiIf(JSONType(_raw, 'at') = 'String', accurateCastOrNull(parseDateTime64BestEffortOrNull(JSONExtractString(_raw, 'at'), 6, 'UTC'), 'DateTime64(3, \\'UTC\\')'), JSONType(_raw, 'at') IN ('Int64', 'UInt64', 'Double'), accurateCastOrNull(JSONExtractRaw(_raw, 'at'), 'DateTime64(3, \\'UTC\\')'), NULL) AS \`__v_at\`,
        accurateCastOrNull((concat(_topic, ':', toString(_partition))), 'String') AS \`__v_src\`,
        multiIf(
            length(_error) > 0, concat('unreadable message: ', _error),
            length(\`_raw\`) = 0, 'empty message',
            NOT isValidUTF8(\`_raw\`), 'invalid UTF-8',
            NOT isValidJSON(\`_raw\`), 'malformed JSON',
            JSONType(\`_raw\`) != 'Object', 'not a JSON object',
            isNull(\`__v_tenant\`), 'tenant: missing, null or not a LowCardinality(String) at $.tenant',
            isNull(\`__v_order_id\`), 'order_id: missing, null or not a UInt64 at $.order.id',
            (JSONType(_raw, 'amount') != 'Null') AND isNull(\`__v_amount\`), 'amount: not a Nullable(Decimal(18, 2)) at $.amount',
            false, 'tags: missing at $.tags',
            isNull(\`__v_at\`), 'at: missing, null or not a DateTime64(3, \\'UTC\\') at $.at',
            isNull(\`__v_src\`), 'src: missing, null or not a String at expression concat(_topic, \\':\\', toString(_partition))',
            ''
        ) AS \`__error\`
    FROM ${o('queue')}
)`;
  return [
    `CREATE TABLE IF NOT EXISTS ${final}
(
    \`tenant\` LowCardinality(String),
    \`order_id\` UInt64,
    \`amount\` Nullable(Decimal(18, 2)),
    \`tags\` Array(String),
    \`at\` DateTime64(3, 'UTC'),
    \`src\` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (\`tenant\`, \`order_id\`, \`at\`)
SETTINGS non_replicated_deduplication_window = 10000`,
    `CREATE TABLE IF NOT EXISTS ${o('staging')}
(
    \`tenant\` LowCardinality(String),
    \`order_id\` UInt64,
    \`amount\` Nullable(Decimal(18, 2)),
    \`tags\` Array(String),
    \`at\` DateTime64(3, 'UTC'),
    \`src\` String,
    \`__t\` DateTime64(3, 'UTC'),
    \`_topic\` LowCardinality(String),
    \`_partition\` UInt32,
    \`_offset\` UInt64,
    \`_timestamp_ms\` Nullable(DateTime64(3, 'UTC')),
    \`_ingested_at\` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (\`_topic\`, \`_partition\`, \`_offset\`)
TTL toDateTime(\`_ingested_at\`) + INTERVAL 172800 SECOND`,
    `CREATE TABLE IF NOT EXISTS ${o('errors')}
(
    \`_raw\` String,
    \`__error\` String,
    \`_topic\` LowCardinality(String),
    \`_partition\` UInt32,
    \`_offset\` UInt64,
    \`_timestamp_ms\` Nullable(DateTime64(3, 'UTC')),
    \`_ingested_at\` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (\`_topic\`, \`_partition\`, \`_offset\`)
TTL toDateTime(\`_ingested_at\`) + INTERVAL 172800 SECOND`,
    `CREATE TABLE IF NOT EXISTS ${o('seen')}
(
    \`tenant\` LowCardinality(String),
    \`order_id\` UInt64,
    \`__t\` DateTime64(3, 'UTC'),
    \`__slice\` String
)
ENGINE = MergeTree
PARTITION BY toStartOfInterval(\`__t\`, INTERVAL 9000 SECOND)
ORDER BY (\`tenant\`, \`order_id\`)
TTL toDateTime(\`__t\`) + INTERVAL 18000 SECOND
SETTINGS non_replicated_deduplication_window = 10000`,
    `CREATE TABLE IF NOT EXISTS ${o('kept')}
(
    \`tenant\` LowCardinality(String),
    \`order_id\` UInt64,
    \`amount\` Nullable(Decimal(18, 2)),
    \`tags\` Array(String),
    \`at\` DateTime64(3, 'UTC'),
    \`src\` String,
    \`__t\` DateTime64(3, 'UTC'),
    \`__slice\` String
)
ENGINE = Null`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${o('kept_to_final_mv')} TO ${final}
AS SELECT \`tenant\`, \`order_id\`, \`amount\`, \`tags\`, \`at\`, \`src\` FROM ${o('kept')}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${o('kept_to_seen_mv')} TO ${o('seen')}
AS SELECT \`tenant\`, \`order_id\`, \`__t\`, \`__slice\` FROM ${o('kept')}`,
    `CREATE TABLE IF NOT EXISTS ${o('queue')}
(
    \`_raw\` String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = ${quoteString(p.source.brokers.join(','))},
    kafka_topic_list = ${quoteString(p.source.topics.join(','))},
    kafka_group_name = ${quoteString(p.source.consumerGroup)},
    kafka_format = 'RawBLOB',
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = 2`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${o('errors_mv')} TO ${o('errors')}
AS SELECT \`_raw\`, \`__error\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`
FROM (${validated})
WHERE \`__error\` != ''`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${o('staging_mv')} TO ${o('staging')}
AS SELECT \`tenant\`, \`order_id\`, \`amount\`, \`tags\`, \`at\`, \`src\`, \`__t\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`
FROM (${validated})
WHERE \`__error\` = ''`,
  ];
}
