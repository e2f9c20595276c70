/**
 * One pair of real servers for the integration and end-to-end suites (the
 * vitest projects `integration` and `e2e`), started once for both:
 *   1. WINNOW_TEST_CLICKHOUSE_URL / WINNOW_TEST_KAFKA_BROKERS when set (servers you run);
 *   2. else testcontainers, when a Docker daemon answers;
 *   3. else the embedded ClickHouse and local Kafka broker (what CI here uses).
 * Tests read the addresses with `inject(...)` and make their own database and
 * topic names (test/support/helpers.ts), so suites never see each other's data.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedClickHouse } from '../../dev/clickhouse.ts';
import { startEmbeddedKafka } from '../../dev/kafka.ts';
import { validateConfig } from '../../src/config/index.ts';
import { grantQueries, type GrantRole } from '../../src/provisioning/grants.ts';
import type { RestrictedUsers, TestServers } from './helpers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    servers: TestServers;
  }
}

type Teardown = () => Promise<void>;

function fromEnv(): TestServers | undefined {
  const url = process.env['WINNOW_TEST_CLICKHOUSE_URL'];
  const brokers = process.env['WINNOW_TEST_KAFKA_BROKERS'];
  if (!url && !brokers) return undefined;
  if (!url || !brokers) {
    throw new Error('set both WINNOW_TEST_CLICKHOUSE_URL and WINNOW_TEST_KAFKA_BROKERS, or neither');
  }
  const list = (v: string | undefined): string[] | undefined =>
    v
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const kafkaBrokers = list(brokers) ?? [];
  return {
    source: 'env',
    clickhouseUrl: url,
    kafkaBrokers,
    kafkaSaslBrokers: list(process.env['WINNOW_TEST_KAFKA_SASL_BROKERS']) ?? [],
    kafkaBrokersForClickHouse: list(process.env['WINNOW_TEST_KAFKA_BROKERS_FOR_CLICKHOUSE']) ?? kafkaBrokers,
    sasl: { mechanism: 'plain', username: 'admin', password: 'admin-secret' },
  };
}

function dockerAnswers(): boolean {
  if (process.env['WINNOW_TEST_NO_DOCKER']) return false;
  return Boolean(process.env['DOCKER_HOST']) || existsSync('/var/run/docker.sock');
}

async function fromContainers(): Promise<[TestServers, Teardown]> {
  const { Network } = await import('testcontainers');
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { ClickHouseContainer } = await import('@testcontainers/clickhouse');
  const network = await new Network().start();
  const kafka = await new KafkaContainer('confluentinc/cp-kafka:7.9.0')
    .withKraft()
    .withNetwork(network)
    .withNetworkAliases('kafka')
    .start();
  const clickhouse = await new ClickHouseContainer('clickhouse/clickhouse-server:26.7').withNetwork(network).start();
  const servers: TestServers = {
    source: 'testcontainers',
    clickhouseUrl: clickhouse.getConnectionUrl(),
    kafkaBrokers: [`${kafka.getHost()}:${kafka.getMappedPort(9093)}`],
    // The SASL/PLAIN listener is only in the embedded broker and docker-compose.yaml.
    kafkaSaslBrokers: [],
    kafkaBrokersForClickHouse: ['kafka:9092'],
    sasl: { mechanism: 'plain', username: 'admin', password: 'admin-secret' },
  };
  return [
    servers,
    async () => {
      await clickhouse.stop();
      await kafka.stop();
      await network.stop();
    },
  ];
}

/**
 * Users with only the grants README "Grants" names for a pipeline of its own
 * (test/e2e/grants.test.ts). The embedded server takes users and grants from
 * users.xml alone, so they are made now, for names chosen now.
 */
function restrictedUsers(): [RestrictedUsers, { name: string; password: string; grants: string[] }[]] {
  const suffix = randomBytes(4).toString('hex');
  const database = `winnow_grants_${suffix}`;
  const pipeline = `grants_${suffix}`;
  const p = validateConfig(
    {
      pipelines: [
        {
          name: pipeline,
          source: { brokers: ['localhost:9092'], topics: ['t'] },
          columns: [{ name: 'event_id', type: 'UUID' }],
          dedup: { window: '1h' },
          sink: { database, table: 'events' },
        },
      ],
    },
    'test servers',
    {},
  ).pipelines[0]!;
  const roles: GrantRole[] = ['migrate', 'run', 'read'];
  const users = roles.map((role) => ({ role, name: `winnow_${role}`, password: randomBytes(12).toString('hex') }));
  return [
    {
      database,
      pipeline,
      users: Object.fromEntries(
        users.map((u) => [u.role, { name: u.name, password: u.password }]),
      ) as RestrictedUsers['users'],
    },
    users.map((u) => ({ name: u.name, password: u.password, grants: grantQueries(u.role, p) })),
  ];
}

async function embedded(): Promise<[TestServers, Teardown]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-test-servers-'));
  const [restricted, users] = restrictedUsers();
  const [clickhouse, kafka] = await Promise.all([
    startEmbeddedClickHouse({
      dataDir: path.join(dir, 'clickhouse'),
      logFile: path.join(dir, 'clickhouse.log'),
      httpPort: 0,
      tcpPort: 0,
      users,
    }),
    startEmbeddedKafka({
      dataDir: path.join(dir, 'kafka'),
      logFile: path.join(dir, 'kafka.log'),
      port: 0,
      saslPort: 0,
    }),
  ]);
  process.stderr.write(
    `test servers (embedded): ClickHouse ${clickhouse.version} ${clickhouse.url}, Kafka ${kafka.version} ${kafka.brokers.join(',')} / SASL ${kafka.saslBrokers.join(',')}; logs in ${dir}\n`,
  );
  return [
    {
      source: 'embedded',
      clickhouseUrl: clickhouse.url,
      kafkaBrokers: kafka.brokers,
      kafkaSaslBrokers: kafka.saslBrokers,
      kafkaBrokersForClickHouse: kafka.brokers,
      sasl: kafka.sasl,
      logDir: dir,
      restricted,
    },
    async () => {
      await Promise.all([clickhouse.stop(), kafka.stop()]);
    },
  ];
}

async function start(): Promise<[TestServers, Teardown]> {
  const env = fromEnv();
  if (env) return [env, () => Promise.resolve()];
  if (dockerAnswers()) {
    try {
      return await fromContainers();
    } catch (err) {
      process.stderr.write(`testcontainers unavailable (${(err as Error).message}); using the embedded servers\n`);
    }
  }
  return embedded();
}

/**
 * Vitest runs a project's global setup once per project (each in its own
 * module instance), so the integration and e2e projects would each start a
 * pair. The pair lives on globalThis of the main vitest process instead: the
 * first project to set up starts it, the others reuse it, and the last
 * project's teardown stops it (vitest sets up and tears down projects one
 * after another, never concurrently).
 */
interface Shared {
  started: Promise<[TestServers, Teardown]>;
  users: number;
}
const SHARED = Symbol.for('winnow.test.servers');
const holder = globalThis as typeof globalThis & { [SHARED]?: Shared };

export default async function setup(project: TestProject): Promise<Teardown> {
  const shared = (holder[SHARED] ??= { started: start(), users: 0 });
  shared.users++;
  const [servers, stop] = await shared.started;
  project.provide('servers', servers);
  return async () => {
    shared.users--;
    if (shared.users > 0) return;
    delete holder[SHARED];
    await stop();
  };
}
