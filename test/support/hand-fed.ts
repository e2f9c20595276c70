/**
 * Pipelines whose staging is filled by hand, for tests of the slice insert
 * without Kafka in the way.
 *
 * A migrated pipeline (event_id, msg, payload) in a fresh database whose
 * staging is filled by hand: the queue and its parsing view are dropped, so
 * nothing else writes to it. Rows are staged with `stageRows`.
 */
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { validateConfig, type PipelineConfig } from '../../src/config/index.ts';
import { Migrator } from '../../src/provisioning/migrator.ts';
import { objectNames, type ObjectNames } from '../../src/provisioning/objects.ts';
import { freshDatabase, servers, uniqueName } from './helpers.ts';

export interface HandFed {
  db: string;
  p: PipelineConfig;
  n: ObjectNames;
  client: Db;
  migrator: Migrator;
}

/** `migrateTo` stops after that migration: the pipeline as an older winnow built it. */
export async function handFedPipeline(
  prefix: string,
  topics: string[],
  dedupWindow: string,
  schedule: { maxSliceRows?: number } = {},
  migrateTo?: string,
  index: 'scan' | 'rocksdb' = 'scan',
): Promise<HandFed> {
  const s = servers();
  const db = (await freshDatabase(`winnow_${prefix}`)).name;
  const p = validateConfig(
    {
      pipelines: [
        {
          name: uniqueName(prefix),
          source: { brokers: s.kafkaBrokersForClickHouse, topics },
          columns: [
            { name: 'event_id', type: 'UUID' },
            { name: 'msg', type: 'UInt64' },
            { name: 'payload', type: 'String' },
          ],
          dedup: { key: ['event_id'], window: dedupWindow, time: 'ingestion', index },
          sink: { url: s.clickhouseUrl, database: db, table: 'events' },
          schedule,
        },
      ],
    },
    'test',
    {},
  ).pipelines[0]!;
  const n = objectNames(p);
  const client = connect({ url: s.clickhouseUrl });
  const migrator = new Migrator(client, p);
  const h = { db, p, n, client, migrator };
  await migrator.up({
    dryRun: false,
    kafkaPassword: undefined,
    print: () => undefined,
    ...(migrateTo === undefined ? {} : { to: migrateTo }),
  });
  await dropQueue(h);
  return h;
}

/** Drops the Kafka queue and its parsing view (if any): nothing but the test writes to staging. */
export async function dropQueue(h: HandFed): Promise<void> {
  await h.client.command(`DROP VIEW IF EXISTS ${h.db}.${h.n.parsedMv} SYNC`);
  await h.client.command(`DROP TABLE IF EXISTS ${h.db}.${h.n.queue} SYNC`);
}

export interface StagedRow {
  key: string;
  msg: number;
  /** ms since the epoch */
  t: number;
  topic: string;
  partition: number;
  offset: number;
}

export async function stageRows(h: HandFed, rows: StagedRow[]): Promise<void> {
  const values = rows
    .map(
      (s) =>
        `('${s.key}', ${s.msg}, 'payload ${s.msg}', fromUnixTimestamp64Milli(toInt64(${s.t}), 'UTC'), '${s.topic}', ${s.partition}, ${s.offset}, NULL, now64(3))`,
    )
    .join(',\n');
  await h.client.command(
    `INSERT INTO ${h.db}.${h.n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at) VALUES ${values}`,
  );
}
