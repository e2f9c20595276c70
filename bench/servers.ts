/**
 * The benchmark's own servers: an embedded ClickHouse and a local Kafka broker
 * on free ports in a temporary directory, never the default ports a developer
 * may be using. Stopped by stop(), also when the run fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import { ROCKSDB_SERVER_CONFIG, startEmbeddedClickHouse, type RunningClickHouse } from '../dev/clickhouse.ts';
import { startEmbeddedKafka, type RunningKafka } from '../dev/kafka.ts';
import { connect, type Db } from '../src/clickhouse/client.ts';

/**
 * RocksDB options of the levers phase's tuned EmbeddedRocksDB tables only (by name): a bloom filter
 * of 10 bits a key (an absent key is answered without reading a data block) and a 256 MB block cache.
 * ClickHouse (StorageEmbeddedRocksDB::initDB) reads `<rocksdb>` and `<rocksdb><tables><table>` keys
 * `options`, `column_family_options` and `block_based_table_options`, then always installs
 * NewBlockBasedTableFactory(block_based_table_options): a `block_based_table_factory={...}` given in
 * `column_family_options` is overwritten, so the filter must be in `block_based_table_options`.
 * Bulk inserts (the table setting optimize_for_bulk_insert, on by default) write SST files with
 * default rocksdb::Options, without a filter; only files written by a flush or a compaction have one.
 */
export const ROCKSDB_TUNED_TABLES = ['seen_rocks_tuned', 'seen_rocks_tuned_filled', 'seen_rocks_tuned_rows'] as const;
/**
 * The server's `<rocksdb>`: winnow's own (dev/clickhouse.ts ROCKSDB_SERVER_CONFIG: a bloom filter and
 * block cache for every EmbeddedRocksDB table, the seen-key index of dedup.index rocksdb included),
 * and the levers phase's tuned tables by name, in one element.
 */
const ROCKSDB_TUNED = `  <rocksdb>${ROCKSDB_SERVER_CONFIG.replace(/^\s*<rocksdb>|<\/rocksdb>\s*$/g, '')}<tables>
${ROCKSDB_TUNED_TABLES.map(
  (name) => `    <table><name>${name}</name><block_based_table_options>
      <filter_policy>bloomfilter:10:false</filter_policy><block_cache>268435456</block_cache>
    </block_based_table_options></table>`,
).join('\n')}
  </tables></rocksdb>
`;

export interface BenchServers {
  dir: string;
  clickhouse: RunningClickHouse;
  kafka: RunningKafka;
  /** A kafkajs client for the broker's PLAINTEXT listener. */
  kafkaClient(clientId: string): Kafka;
  /** A winnow Db on the server, default database. */
  db(database?: string): Db;
  /** A plain @clickhouse/client for bench-side queries. */
  client: ClickHouseClient;
  stop(): Promise<void>;
}

export async function startServers(opts: { keep: boolean; log: (line: string) => void }): Promise<BenchServers> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-bench-'));
  const started = Date.now();
  const results = await Promise.allSettled([
    startEmbeddedClickHouse({
      dataDir: path.join(dir, 'clickhouse'),
      logFile: path.join(dir, 'clickhouse.log'),
      httpPort: 0,
      tcpPort: 0,
      extraConfig: ROCKSDB_TUNED,
    }),
    startEmbeddedKafka({
      dataDir: path.join(dir, 'kafka'),
      logFile: path.join(dir, 'kafka.log'),
      port: 0,
      saslPort: 0,
      controllerPort: 0,
    }),
  ]);
  const [ch, kf] = results;
  if (ch.status === 'rejected' || kf.status === 'rejected') {
    await Promise.allSettled(results.map((r) => (r.status === 'fulfilled' ? r.value.stop() : Promise.resolve())));
    const reason: unknown = ch.status === 'rejected' ? ch.reason : kf.status === 'rejected' ? kf.reason : undefined;
    throw new Error(`could not start the benchmark servers (logs in ${dir})`, { cause: reason });
  }
  const clickhouse = ch.value;
  const kafka = kf.value;
  opts.log(
    `servers up in ${((Date.now() - started) / 1000).toFixed(1)} s: ClickHouse ${clickhouse.version} ${clickhouse.url}, Kafka ${kafka.version} ${kafka.brokers.join(',')}; logs in ${dir}`,
  );
  const client = createClient({
    url: clickhouse.url,
    request_timeout: 600_000,
    clickhouse_settings: { send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '60000' },
  });
  const dbs: Db[] = [];
  let stopping: Promise<void> | undefined;
  return {
    dir,
    clickhouse,
    kafka,
    client,
    kafkaClient: (clientId) => new Kafka({ clientId, brokers: kafka.brokers, logLevel: logLevel.NOTHING }),
    db(database) {
      const d = connect({ url: clickhouse.url, ...(database ? { database } : {}), requestTimeoutMs: 3_600_000 });
      dbs.push(d);
      return d;
    },
    stop: () =>
      (stopping ??= (async () => {
        await Promise.allSettled([client.close(), ...dbs.map((d) => d.close())]);
        await Promise.allSettled([clickhouse.stop(), kafka.stop()]);
        if (!opts.keep) await rm(dir, { recursive: true, force: true });
        else opts.log(`server data kept in ${dir}`);
      })()),
  };
}
