/**
 * The benchmarked pipeline: the reference scenario's users pipeline, built
 * through winnow's own config validation and migrations. Levers under test
 * (Kafka queue settings, seen-keys table settings) are applied by creating
 * those two objects first with the extra settings; the migration's
 * CREATE ... IF NOT EXISTS then leaves them as they are.
 */
import { validateConfig, type PipelineConfig } from '../src/config/index.ts';
import type { Db } from '../src/clickhouse/client.ts';
import { Migrator } from '../src/provisioning/migrator.ts';
import { objectNames, upStatements } from '../src/provisioning/objects.ts';

export interface Levers {
  /** extra SETTINGS of the Kafka engine queue, e.g. kafka_flush_interval_ms */
  queue: Record<string, string>;
  /** extra SETTINGS of the seen-keys table, e.g. index_granularity */
  seen: Record<string, string>;
  /** extra settings of the slice insert (applied by the Db wrapper) */
  insert: Record<string, string>;
  maxSliceRows: number;
  /** controller tick, ms: idle wait between polls when staging has nothing new */
  tickMs: number;
  consumers: number;
}

export interface PipelineSpec {
  name: string;
  database: string;
  brokers: string[];
  topic: string;
  windowMs: number;
  levers: Levers;
  clickhouseUrl: string;
  /** dedup.index (default scan) */
  index?: 'scan' | 'rocksdb';
}

export function benchPipeline(s: PipelineSpec): PipelineConfig {
  const config = validateConfig(
    {
      pipelines: [
        {
          name: s.name,
          source: { brokers: s.brokers, topics: [s.topic], consumers: s.levers.consumers },
          columns: [
            { name: 'event_id', type: 'UUID' },
            { name: 'user_id', type: 'UUID' },
            { name: 'name', type: 'String', path: 'user_name' },
            { name: 'email', type: 'String', path: 'user_email' },
            { name: 'created_at', type: 'DateTime', path: 'created_at' },
          ],
          dedup: { key: ['event_id'], window: `${s.windowMs}ms`, index: s.index ?? 'scan' },
          sink: { url: s.clickhouseUrl, database: s.database, table: 'users_dedup' },
          schedule: { interval: `${Math.max(100, s.levers.tickMs)}ms`, maxSliceRows: s.levers.maxSliceRows },
        },
      ],
    },
    'bench',
    {},
  );
  const p = config.pipelines[0];
  if (!p) throw new Error('bench pipeline: validation returned no pipeline');
  return p;
}

function withSettings(sql: string, extra: Record<string, string>): string {
  const entries = Object.entries(extra);
  if (entries.length === 0) return sql;
  const list = entries.map(([k, v]) => `${k} = ${v}`).join(', ');
  // SETTINGS is the last clause of both statements.
  return /\bSETTINGS\b/.test(sql) ? `${sql.trimEnd()},\n    ${list}` : `${sql.trimEnd()}\nSETTINGS ${list}`;
}

/** Creates everything `winnow migrate up` creates, with the levers' settings on the queue and the seen keys. */
export async function migrate(db: Db, p: PipelineConfig, levers: Levers): Promise<number> {
  const started = performance.now();
  const n = objectNames(p);
  await db.command(`CREATE DATABASE IF NOT EXISTS ${n.database}`);
  const statements = upStatements(p, { createFinal: true });
  const seenSql = statements.find((s) => s.title.startsWith('seen keys'))?.sql;
  const queueSql = statements.find((s) => s.title.startsWith('Kafka queue'))?.sql;
  if (Object.keys(levers.seen).length > 0) {
    if (!seenSql) throw new Error('bench: no seen-keys statement among the migration statements');
    await db.command(withSettings(seenSql, levers.seen));
  }
  if (Object.keys(levers.queue).length > 0) {
    if (!queueSql) throw new Error('bench: no Kafka queue statement among the migration statements');
    await db.command(withSettings(queueSql, levers.queue));
  }
  // inPlace: false, or up would take the levers' settings off the queue as drift from the configuration.
  await new Migrator(db, p).up({ dryRun: false, kafkaPassword: undefined, print: () => undefined, inPlace: false });
  return performance.now() - started;
}

/** Bytes on disk, rows and active parts per table of a database. */
export async function diskUsage(
  db: Db,
  database: string,
): Promise<Record<string, { bytes: number; rows: number; parts: number }>> {
  const rows = await db.rows<{ table: string; bytes: string; rows: string; parts: string }>(
    `SELECT table, sum(bytes_on_disk) AS bytes, sum(rows) AS rows, count() AS parts
     FROM system.parts WHERE database = {db:String} AND active GROUP BY table ORDER BY table`,
    { db: database },
  );
  return Object.fromEntries(
    rows.map((r) => [r.table, { bytes: Number(r.bytes), rows: Number(r.rows), parts: Number(r.parts) }]),
  );
}

export async function count(db: Db, table: string, where = '1'): Promise<number> {
  const rows = await db.rows<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE ${where}`);
  return Number(rows[0]?.n ?? 0);
}

/** Drops the queue's views and the queue, so the phase's consumer leaves the machine to the next phase. */
export async function stopConsumption(db: Db, p: PipelineConfig): Promise<void> {
  const n = objectNames(p);
  for (const v of [n.stagingMv, n.errorsMv]) await db.command(`DROP VIEW IF EXISTS ${n.database}.${v} SYNC`);
  await db.command(`DROP TABLE IF EXISTS ${n.database}.${n.queue} SYNC`);
}
