/**
 * The local Kafka broker (dev/kafka.ts) against real kafkajs clients.
 * It starts its own broker on free ports in a temp dir, independent of the
 * suite's global servers. One broker serves most cases; the last case stops
 * and restarts it. The temp dir is removed only when every case passed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Kafka, type KafkaConfig } from 'kafkajs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { kafkaClientConfig, KAFKA_VERSION, startEmbeddedKafka, type RunningKafka } from '../../dev/kafka.ts';
import { WinnowError } from '../../src/errors.ts';

const name = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

let dir: string;
let dataDir: string;
let kafka: RunningKafka | undefined;
let failed = false;

function running(): RunningKafka {
  if (!kafka) throw new Error('the broker of this suite is not running');
  return kafka;
}

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    failed = true;
  });
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-embedded-kafka-'));
  dataDir = path.join(dir, 'kafka');
  kafka = await startEmbeddedKafka({ dataDir, port: 0, saslPort: 0 });
}, 180_000);

afterAll(async () => {
  await kafka?.stop();
  if (failed) process.stderr.write(`embedded-kafka test: data and log left in ${dir}\n`);
  else await rm(dir, { recursive: true, force: true });
}, 60_000);

async function produce(config: KafkaConfig, topic: string, values: string[]): Promise<void> {
  const producer = new Kafka(config).producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    await producer.send({ topic, messages: values.map((value) => ({ value })) });
  } finally {
    await producer.disconnect();
  }
}

async function consume(config: KafkaConfig, topic: string, count: number, timeoutMs = 30_000): Promise<string[]> {
  const consumer = new Kafka(config).consumer({ groupId: name('group') });
  const got: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumed ${got.length} of ${count} messages in ${timeoutMs} ms`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: ({ message }) => {
            got.push(message.value?.toString() ?? '');
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

function errorNames(err: unknown): string[] {
  const names: string[] = [];
  for (
    let e: unknown = err;
    e instanceof Error;
    e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError
  ) {
    names.push(e.name);
    if (names.length > 5) break;
  }
  return names;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('embedded Kafka broker', () => {
  it('runs the pinned version on the ports it reports', () => {
    const k = running();
    expect(k.version).toBe(KAFKA_VERSION);
    expect(k.brokers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(k.saslBrokers).toEqual([expect.stringMatching(/^127\.0\.0\.1:\d+$/)]);
    expect(k.saslBrokers).not.toEqual(k.brokers);
    expect(k.sasl).toEqual({ mechanism: 'plain', username: 'admin', password: 'admin-secret' });
    expect(isAlive(k.pid)).toBe(true);
  });

  it('produces and consumes on the PLAINTEXT listener', async () => {
    const config = kafkaClientConfig(running());
    const topic = name('plain');
    const admin = new Kafka(config).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    await produce(config, topic, ['a', 'b', 'c']);
    expect(await consume(config, topic, 3)).toEqual(['a', 'b', 'c']);
  }, 60_000);

  it('produces and consumes on the SASL_PLAINTEXT listener with PLAIN admin/admin-secret (topic auto-created)', async () => {
    const config = kafkaClientConfig(running(), { sasl: true });
    expect(config.brokers).toEqual(running().saslBrokers);
    expect(config.sasl).toEqual({ mechanism: 'plain', username: 'admin', password: 'admin-secret' });
    const topic = name('sasl');
    await produce(config, topic, ['x', 'y']);
    expect(await consume(config, topic, 2)).toEqual(['x', 'y']);
  }, 60_000);

  it('rejects a wrong SASL password', async () => {
    const base = kafkaClientConfig(running(), { sasl: true });
    const admin = new Kafka({
      ...base,
      sasl: { mechanism: 'plain', username: 'admin', password: 'wrong' },
      retry: { retries: 0 },
    }).admin();
    const err: unknown = await admin.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await admin.disconnect();
    expect(errorNames(err)).toContain('KafkaJSSASLAuthenticationError');
  }, 30_000);

  it('refuses a second broker on a data dir in use (pid file)', async () => {
    await expect(startEmbeddedKafka({ dataDir, port: 0, saslPort: 0 })).rejects.toMatchObject({
      code: 'DATA_DIR_LOCKED',
      message: expect.stringContaining(`pid ${running().pid}`) as unknown,
    });
  });

  it("recognises Kafka's own log dir lock when the pid file is gone", async () => {
    const pidFile = path.join(dataDir, 'kafka.pid');
    await rename(pidFile, `${pidFile}.aside`);
    try {
      await expect(startEmbeddedKafka({ dataDir, port: 0, saslPort: 0 })).rejects.toMatchObject({
        code: 'DATA_DIR_LOCKED',
      });
    } finally {
      await rename(`${pidFile}.aside`, pidFile);
    }
    expect(isAlive(running().pid)).toBe(true);
  }, 60_000);

  it('refuses a taken port before spawning anything', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const otherDir = path.join(dir, 'port-taken');
    try {
      const err: unknown = await startEmbeddedKafka({ dataDir: otherDir, port, saslPort: 0 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WinnowError);
      expect(err).toMatchObject({
        code: 'PORT_IN_USE',
        message: `Kafka PLAINTEXT port ${port} on 127.0.0.1 is already in use`,
        hint: 'stop whatever listens there or choose another port with --kafka-port',
      });
      expect(existsSync(path.join(otherDir, 'kafka.pid'))).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('stops without leaving a process, and keeps topics and messages across a restart', async () => {
    const first = running();
    const topic = name('durable');
    await produce(kafkaClientConfig(first), topic, ['kept-1', 'kept-2']);

    await first.stop();
    await first.stop(); // idempotent
    kafka = undefined;
    expect(isAlive(first.pid)).toBe(false);
    expect(await first.exited).toMatchObject({ code: expect.any(Number) as unknown });
    expect(existsSync(path.join(dataDir, 'kafka.pid'))).toBe(false);

    kafka = await startEmbeddedKafka({ dataDir, port: 0, saslPort: 0 });
    const config = kafkaClientConfig(kafka);
    const admin = new Kafka(config).admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    expect(topics).toContain(topic);
    expect(await consume(config, topic, 2)).toEqual(['kept-1', 'kept-2']);
  }, 120_000);
});
