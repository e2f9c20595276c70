/**
 * The fault suite's servers: one embedded ClickHouse and one Kafka broker per
 * test file, on fixed free ports picked once, so a server can be killed and
 * started again on the same data directory and address.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { ROCKSDB_SERVER_CONFIG, startEmbeddedClickHouse, type RunningClickHouse } from '../../dev/clickhouse.ts';
import { startEmbeddedKafka, type RunningKafka } from '../../dev/kafka.ts';
import { freePort } from '../../dev/ports.ts';
import { isAlive } from '../support/processes.ts';
import { hex } from './common.ts';
import { killDaemons } from './daemon.ts';

const RESERVED_PORTS = new Set([8123, 9000, 9092, 9093]);

/** A free port that is none of the reference scenario's ports and none already taken by this suite. */
async function pickPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (!RESERVED_PORTS.has(p) && !taken.has(p)) {
      taken.add(p);
      return p;
    }
  }
}

export interface Ports {
  chHttp: number;
  chTcp: number;
  kafka: number;
  kafkaSasl: number;
  kafkaController: number;
}

/** One embedded ClickHouse and one Kafka broker of this test file, restartable on the same ports and data. */
export class Servers {
  private constructor(
    readonly dir: string,
    readonly ports: Ports,
    public clickhouse: RunningClickHouse,
    public kafka: RunningKafka,
  ) {}

  static async start(label: string): Promise<Servers> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `winnow-faults-${label}-`));
    const taken = new Set<number>();
    const ports: Ports = {
      chHttp: await pickPort(taken),
      chTcp: await pickPort(taken),
      kafka: await pickPort(taken),
      kafkaSasl: await pickPort(taken),
      kafkaController: await pickPort(taken),
    };
    const [ch, kafka] = await Promise.all([Servers.startClickHouse(dir, ports), Servers.startKafka(dir, ports)]);
    process.stderr.write(
      `fault servers (${label}): ClickHouse ${ch.version} ${ch.url}, Kafka ${kafka.version} ${kafka.brokers.join(',')}; data and logs in ${dir}\n`,
    );
    return new Servers(dir, ports, ch, kafka);
  }

  private static startClickHouse(dir: string, ports: Ports): Promise<RunningClickHouse> {
    return startEmbeddedClickHouse({
      dataDir: path.join(dir, 'clickhouse'),
      logFile: path.join(dir, 'clickhouse.log'),
      httpPort: ports.chHttp,
      tcpPort: ports.chTcp,
      // As `winnow dev up` runs it: the seen-key index's bloom filter and block cache.
      extraConfig: ROCKSDB_SERVER_CONFIG,
    });
  }

  private static startKafka(dir: string, ports: Ports): Promise<RunningKafka> {
    return startEmbeddedKafka({
      dataDir: path.join(dir, 'kafka'),
      logFile: path.join(dir, 'kafka.log'),
      port: ports.kafka,
      saslPort: ports.kafkaSasl,
      controllerPort: ports.kafkaController,
    });
  }

  get clickhouseUrl(): string {
    return this.clickhouse.url;
  }

  get brokers(): string[] {
    return this.kafka.brokers;
  }

  /** SIGKILL the ClickHouse server process (no clean shutdown) and wait until it is gone. */
  async killClickHouse(): Promise<void> {
    const pid = this.clickhouse.pid;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (isAlive(pid)) {
      if (Date.now() > deadline) throw new Error(`ClickHouse pid ${pid} still alive 15 s after SIGKILL`);
      await sleep(50);
    }
  }

  /** Start ClickHouse again on the same data directory and ports. */
  async startClickHouseAgain(): Promise<void> {
    this.clickhouse = await Servers.startClickHouse(this.dir, this.ports);
  }

  /** Stop the broker (SIGTERM, clean) and start it again on the same data directory and ports. */
  async restartKafka(downMs = 0): Promise<void> {
    await this.kafka.stop();
    if (downMs > 0) await sleep(downMs);
    this.kafka = await Servers.startKafka(this.dir, this.ports);
  }

  /** Kills the daemons still running (a failed scenario's), then stops both servers. */
  async stop(): Promise<void> {
    await killDaemons();
    await Promise.allSettled([this.clickhouse.stop(), this.kafka.stop()]);
  }

  kafkaClient(label = 'faults'): Kafka {
    return new Kafka({
      clientId: `winnow-${label}-${hex()}`,
      brokers: this.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 3_000 },
    });
  }

  clickhouseClient(): ClickHouseClient {
    // Quiet: failed requests are expected while a server is down on purpose; errors still reach the caller.
    return createClient({ url: this.clickhouseUrl, request_timeout: 60_000, log: { level: ClickHouseLogLevel.OFF } });
  }
}
