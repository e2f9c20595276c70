/**
 * Platform proof: the servers the integration suite runs against (test/support/global-setup.ts)
 * are a real ClickHouse and a real Kafka, and the one mechanism winnow is built on works
 * end to end: a ClickHouse Kafka-engine table with kafka_handle_error_mode='stream',
 * read by a materialized view into MergeTree, keeping partition, offset and timestamp of
 * every message and capturing a malformed one as an error row without stopping the stream.
 *
 * Winnow invariants touched: none of I1-I6 directly. Those are proven by the pipeline's own
 * tests; this file proves the ground they stand on (the virtual columns they read, the
 * per-partition offset sequence, the error row in stream mode).
 *
 * Every case uses its own database (freshDatabase) and topics (uniqueName); data tables are
 * left in place for inspection, only the Kafka-engine table is dropped so its consumer stops.
 */
import type { ClickHouseClient } from '@clickhouse/client';
// kafkajs is CommonJS and spreads its error classes into module.exports, which Node's
// named-export detection misses; the default import is the whole exports object.
import kafkajs, { type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';

let db: { name: string; client: ClickHouseClient };

beforeAll(async () => {
  db = await freshDatabase('winnow_servers');
});

afterAll(async () => {
  await db?.client.close();
});

async function rows<T>(sql: string): Promise<T[]> {
  const rs = await db.client.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

async function command(sql: string): Promise<void> {
  await db.client.command({ query: sql });
}

async function createTopicVia(k: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = k.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/** Produces `values` to a one-partition topic, then reads them back with a fresh consumer group. */
async function roundTrip(k: Kafka, topic: string, values: string[], timeoutMs = 30_000): Promise<string[]> {
  const producer = k.producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages: values.map((value) => ({ value })) });
  } finally {
    await producer.disconnect();
  }

  const consumer = k.consumer({ groupId: uniqueName('winnow-servers-group'), maxWaitTimeInMs: 500 });
  const got: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumed ${got.length} of ${values.length} messages in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: ({ message }) => {
            got.push(message.value?.toString() ?? '');
            if (got.length >= values.length) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

describe('ClickHouse', () => {
  it('reports version 26 or later', async () => {
    const [row] = await rows<{ v: string }>('SELECT version() AS v');
    expect(row?.v).toMatch(/^\d+\.\d+/);
    expect(Number(row!.v.split('.')[0])).toBeGreaterThanOrEqual(26);
  });

  it('runs MergeTree with a TTL and a materialized view', async () => {
    await command(`CREATE TABLE mt_events (id UInt64, kind String, ts DateTime)
                   ENGINE = MergeTree ORDER BY id TTL ts + INTERVAL 1 DAY`);
    await command('CREATE TABLE mt_counts (kind String, n UInt64) ENGINE = SummingMergeTree ORDER BY kind');
    await command(
      'CREATE MATERIALIZED VIEW mt_counts_mv TO mt_counts AS SELECT kind, count() AS n FROM mt_events GROUP BY kind',
    );
    await command(`INSERT INTO mt_events VALUES
                     (1, 'a', now()), (2, 'a', now()), (3, 'b', now()),
                     (4, 'old', now() - INTERVAL 3 DAY), (5, 'old', now() - INTERVAL 3 DAY)`);

    // The view saw every inserted row, expired or not: it runs on the insert, the TTL at merges.
    expect(await rows('SELECT kind, toUInt32(sum(n)) AS n FROM mt_counts GROUP BY kind ORDER BY kind')).toEqual([
      { kind: 'a', n: 2 },
      { kind: 'b', n: 1 },
      { kind: 'old', n: 2 },
    ]);
    // Expired rows go at the next merge; FINAL forces one.
    await command('OPTIMIZE TABLE mt_events FINAL');
    expect(await rows('SELECT toUInt32(id) AS id FROM mt_events ORDER BY id')).toEqual([
      { id: 1 },
      { id: 2 },
      { id: 3 },
    ]);
    const [table] = await rows<{ ttl: number }>(
      `SELECT engine_full LIKE '%TTL%' AS ttl FROM system.tables WHERE database = currentDatabase() AND name = 'mt_events'`,
    );
    expect(table?.ttl).toBe(1);
  });
});

// testcontainers mode starts cp-kafka without a SASL listener (kafkaSaslBrokers is empty);
// the SASL cases need the embedded broker, docker-compose.yaml, or env-provided SASL brokers.
const noSasl = servers().kafkaSaslBrokers.length === 0;

describe('Kafka', () => {
  it('produces and consumes on the PLAINTEXT listener', async () => {
    const topic = uniqueName('servers_plain');
    await createTopic(topic, 1);
    const values = ['p-1', 'p-2', 'p-3'];
    expect(await roundTrip(kafka(), topic, values)).toEqual(values);
  });

  it.skipIf(noSasl)('produces and consumes on the SASL_PLAINTEXT listener with PLAIN admin/admin-secret', async () => {
    const k = kafka({ sasl: true });
    expect(servers().sasl).toMatchObject({ mechanism: 'plain', username: 'admin', password: 'admin-secret' });
    const topic = uniqueName('servers_sasl');
    await createTopicVia(k, topic, 1);
    const values = ['s-1', 's-2', 's-3'];
    expect(await roundTrip(k, topic, values)).toEqual(values);
  });

  it.skipIf(noSasl)('rejects a wrong SASL password', async () => {
    const admin = kafka({ sasl: true, password: 'not-the-admin-secret' }).admin();
    const err: unknown = await admin.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await admin.disconnect();
    // Not retriable, so kafkajs's retrier hands it back as is rather than wrapped.
    expect(err).toBeInstanceOf(kafkajs.KafkaJSSASLAuthenticationError);
    expect(err).toMatchObject({ retriable: false });
  });
});

interface EngineRow {
  id: number;
  name: string;
  amount: number;
  partition: number;
  offset: number;
  ts: string;
  error: string;
  raw: string;
}

describe('ClickHouse Kafka engine', () => {
  it('consumes a 3-partition topic through a materialized view, capturing a malformed message in stream mode', async () => {
    const topic = uniqueName('servers_engine');
    const group = uniqueName('winnow_servers_ch');
    await createTopic(topic, 3);

    await command(`CREATE TABLE engine_rows
      (
        id UInt32, name String, amount Float64,
        _partition UInt64, _offset UInt64, _timestamp_ms Nullable(DateTime64(3)),
        _error String, _raw_message String
      )
      ENGINE = MergeTree ORDER BY (_partition, _offset)`);
    await command(`CREATE TABLE engine_queue (id UInt32, name String, amount Float64)
      ENGINE = Kafka
      SETTINGS
        kafka_broker_list = '${servers().kafkaBrokersForClickHouse.join(',')}',
        kafka_topic_list = '${topic}',
        kafka_group_name = '${group}',
        kafka_format = 'JSONEachRow',
        kafka_handle_error_mode = 'stream',
        kafka_num_consumers = 1,
        kafka_flush_interval_ms = 500`);
    try {
      await command(`CREATE MATERIALIZED VIEW engine_mv TO engine_rows AS
        SELECT id, name, amount, _partition, _offset, _timestamp_ms, _error, _raw_message FROM engine_queue`);

      // Explicit CreateTime timestamps, an hour back, distinct to the millisecond.
      const base = Date.now() - 3_600_000;
      type Sent = { partition: number; value: string; timestamp: number };
      const sent: Sent[] = [];
      const valid = (n: number): Sent => {
        const partition = n % 3;
        return {
          partition,
          value: JSON.stringify({ id: n, name: `name-${n}`, amount: n * 1.5 }),
          timestamp: base + n * 1001,
        };
      };
      const producer = kafka().producer();
      await producer.connect();
      const send = async (batch: Sent[]): Promise<void> => {
        await producer.send({
          topic,
          messages: batch.map((m) => ({ partition: m.partition, value: m.value, timestamp: String(m.timestamp) })),
        });
        sent.push(...batch);
      };
      const count = async (): Promise<number> =>
        Number((await rows<{ n: string }>('SELECT count() AS n FROM engine_rows'))[0]?.n ?? 0);

      const malformed: Sent = { partition: 1, value: '{"id": 9999, "name": "broken"', timestamp: base + 500_000 };
      try {
        // 27 valid messages (9 per partition), then the malformed one into partition 1.
        await send(Array.from({ length: 27 }, (_, i) => valid(i)));
        await send([malformed]);
        await waitFor(count, (n) => n >= 28, 40_000, '28 rows through the Kafka engine');
        // The consumer is past the bad message: 3 more valid ones, one per partition, arrive too.
        await send([27, 28, 29].map(valid));
        await waitFor(count, (n) => n >= 31, 20_000, '31 rows through the Kafka engine');
      } finally {
        await producer.disconnect();
      }

      const got = await rows<EngineRow>(`
        SELECT id, name, amount, toUInt32(_partition) AS partition, toUInt32(_offset) AS offset,
               toString(toUnixTimestamp64Milli(_timestamp_ms)) AS ts, _error AS error, _raw_message AS raw
        FROM engine_rows ORDER BY partition, offset`);
      expect(got).toHaveLength(31);

      // Every partition, each with offsets exactly 0..n-1 (nothing lost, nothing twice).
      const offsets = new Map<number, number[]>();
      for (const r of got) offsets.set(r.partition, [...(offsets.get(r.partition) ?? []), r.offset]);
      expect([...offsets.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2]);
      for (const [p, list] of offsets) {
        const expected = sent.filter((m) => m.partition === p).length;
        expect(list, `offsets of partition ${p}`).toEqual(Array.from({ length: expected }, (_, i) => i));
      }

      // Row by row against what was sent, in per-partition send order (= offset order).
      const sentByPartition = [0, 1, 2].map((p) => sent.filter((m) => m.partition === p));
      for (const r of got) {
        const m = sentByPartition[r.partition]![r.offset]!;
        expect(r.ts, `timestamp at ${r.partition}/${r.offset}`).toBe(String(m.timestamp));
        if (m === malformed) {
          expect(r.error).not.toBe('');
          expect(r.raw).toBe(malformed.value);
          // Stream mode fills the data columns with defaults.
          expect(r).toMatchObject({ id: 0, name: '', amount: 0 });
        } else {
          const v = JSON.parse(m.value) as { id: number; name: string; amount: number };
          expect(r, `row at ${r.partition}/${r.offset}`).toMatchObject({ ...v, error: '', raw: '' });
        }
      }
      const errors = got.filter((r) => r.error !== '');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ partition: 1, offset: 9 });
      // The stream went on past the bad message in its own partition.
      expect(got.filter((r) => r.partition === 1 && r.offset > 9).map((r) => r.id)).toEqual([28]);
    } finally {
      // Stop the consumer; engine_rows stays for inspection.
      await command('DROP VIEW IF EXISTS engine_mv SYNC');
      await command('DROP TABLE IF EXISTS engine_queue SYNC');
    }
  });
});
