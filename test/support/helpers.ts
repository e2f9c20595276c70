import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { inject } from 'vitest';

export interface TestServers {
  source: 'env' | 'testcontainers' | 'embedded';
  clickhouseUrl: string;
  /** PLAINTEXT listener, from the test process. */
  kafkaBrokers: string[];
  /** SASL_PLAINTEXT listener with PLAIN; empty when the servers have none. */
  kafkaSaslBrokers: string[];
  /** The broker address as ClickHouse's Kafka engine must use it. */
  kafkaBrokersForClickHouse: string[];
  sasl: { mechanism: 'plain'; username: string; password: string };
  logDir?: string;
  /** ClickHouse users with only the grants of README "Grants" (embedded servers only; test/e2e/grants.test.ts). */
  restricted?: RestrictedUsers;
}

export interface RestrictedUsers {
  /** the sink database and pipeline name the users' grants name (the database is not created) */
  database: string;
  pipeline: string;
  users: Record<'migrate' | 'run' | 'read', { name: string; password: string }>;
}

export function servers(): TestServers {
  return inject('servers');
}

/** A name unique to this test run: prefix plus a random suffix. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export function clickhouse(database?: string): ClickHouseClient {
  return createClient({
    url: servers().clickhouseUrl,
    ...(database ? { database } : {}),
    request_timeout: 120_000,
    clickhouse_settings: { send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '60000' },
  });
}

/**
 * A fresh database for one test file. It is left in place after the run so a
 * failing test's data can be inspected; every name is unique, so nothing clashes.
 */
export async function freshDatabase(prefix = 'winnow_test'): Promise<{ name: string; client: ClickHouseClient }> {
  const name = uniqueName(prefix);
  const admin = clickhouse();
  await admin.command({ query: `CREATE DATABASE ${name}` });
  await admin.close();
  return { name, client: clickhouse(name) };
}

export function kafka(opts: { sasl?: boolean; password?: string } = {}): Kafka {
  const s = servers();
  const config: KafkaConfig = {
    clientId: uniqueName('winnow-test'),
    brokers: opts.sasl ? s.kafkaSaslBrokers : s.kafkaBrokers,
    logLevel: logLevel.NOTHING,
    ...(opts.sasl
      ? { sasl: { mechanism: 'plain', username: s.sasl.username, password: opts.password ?? s.sasl.password } }
      : {}),
  };
  return new Kafka(config);
}

/**
 * Creates a topic and waits until each partition has a leader. Not kafkajs's own `waitForLeaders`: on a
 * busy broker its metadata request fails with "This server does not host this topic-partition" instead of
 * waiting (seen in test/e2e/metrics.test.ts while another suite loaded the shared Kafka).
 */
export async function createTopic(name: string, partitions = 1): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: false,
    });
    await waitFor(
      async () => {
        try {
          const { topics } = await admin.fetchTopicMetadata({ topics: [name] });
          return topics[0]?.partitions.filter((p) => p.leader >= 0).length ?? 0;
        } catch {
          return 0; // not known to the broker yet
        }
      },
      (n) => n === partitions,
      30_000,
      `leaders of the ${partitions} partitions of ${name}`,
    );
  } finally {
    await admin.disconnect();
  }
}

/** Polls `probe` until it returns a value `done` accepts, or fails after timeoutMs with the last value. */
export async function waitFor<T>(
  probe: () => Promise<T>,
  done: (v: T) => boolean,
  timeoutMs = 60_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!done(last)) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
    last = await probe();
  }
  return last;
}
