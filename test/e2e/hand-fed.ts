/**
 * Pipelines whose staging is filled by hand, for tests of the slice insert
 * without Kafka in the way.
 */
import { connect } from '../../src/clickhouse/client.ts';
import { validateConfig } from '../../src/config/index.ts';
import { Migrator } from '../../src/pipeline/migrator.ts';
import { objectNames } from '../../src/pipeline/objects.ts';
import { freshDatabase, servers, uniqueName } from '../helpers.ts';

/**
 * A migrated pipeline (event_id, msg, payload) in a fresh database whose staging
 * is filled by hand: the queue and its parsing view are dropped, so nothing else writes to it.
 */
export async function handFedPipeline(prefix: string, topics: string[], dedupWindow: string, schedule: { maxSliceRows?: number } = {}) {
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
          dedup: { key: ['event_id'], window: dedupWindow, time: 'ingestion' },
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
  await migrator.up({ dryRun: false, kafkaPassword: undefined, print: () => undefined });
  await client.command(`DROP VIEW IF EXISTS ${db}.${n.parsedMv} SYNC`);
  await client.command(`DROP TABLE IF EXISTS ${db}.${n.queue} SYNC`);
  return { db, p, n, client, migrator };
}

