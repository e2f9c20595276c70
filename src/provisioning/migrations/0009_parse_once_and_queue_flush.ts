import { qualified, quoteString } from '../../clickhouse/sql.ts';
import { columnList, kafkaAuthSettings, names, validatedSelect } from './0002_pipeline_objects.render.ts';
import { statement, type MigrationStatement, type WinnowMigration } from './types.ts';

/**
 * Brings the objects 0002 built to what 0002 built last (13f841f), for the
 * changes that were once made to 0002 itself instead of in a new migration.
 * Depending on when 0002 ran, a pipeline has
 *   - (ad4a3ad) two views reading the Kafka queue, each parsing every message
 *     again, and a queue flushing every 7.5 s;
 *   - (9c2404a) the same with a queue flushing every 500 ms;
 *   - (3d45d97) the queue's one view into the Null table `_parsed`, whose two
 *     views split rows into staging and dead letters;
 *   - (3234234) also the kept counts (table and a third view on the dedup entry
 *     point), as did 0005 under its first name 0005_seen_hash_and_kept_counts;
 *     13f841f removed them because that view doubled retried slice inserts.
 * Every statement is unconditional and idempotent, so all of these end the
 * same. Consumption stops first (the parsing view and the queue are dropped
 * before the views they feed); the Kafka engine commits offsets only after its
 * views wrote a block, so the recreated queue resumes where the old one
 * stopped. A Kafka table takes no MODIFY SETTING, hence the queue is recreated
 * for its flush interval. On a new install 0002 (frozen as last shipped) built
 * these objects already; 0009 takes the consumption path apart and rebuilds it
 * in the same safe order: the parsed table and its two views, then the queue,
 * the parsing view last. Frozen: never edit, a later change is a new migration.
 */

function names0009(p: { name: string }) {
  const base = `winnow_${p.name}`;
  return {
    queue: `${base}_queue`,
    parsed: `${base}_parsed`,
    parsedMv: `${base}_parsed_mv`,
    staging: `${base}_staging`,
    stagingMv: `${base}_staging_mv`,
    errors: `${base}_errors`,
    errorsMv: `${base}_errors_mv`,
    keptCounts: `${base}_kept_counts`,
    keptToCountsMv: `${base}_kept_to_counts_mv`,
  };
}

export const migration: WinnowMigration = {
  name: '0009_parse_once_and_queue_flush',
  async up(ctx) {
    const p = ctx.pipeline;
    const n = names0009(p);
    const q = (t: string): string => qualified(p.sink.database, t);
    const out: MigrationStatement[] = [
      statement(
        `drop view ${n.keptToCountsMv} (kept counts, removed in 13f841f)`,
        `DROP VIEW IF EXISTS ${q(n.keptToCountsMv)} SYNC`,
      ),
      statement(
        `drop table ${n.keptCounts} (kept counts, removed in 13f841f)`,
        `DROP TABLE IF EXISTS ${q(n.keptCounts)} SYNC`,
      ),
      statement(`drop view ${n.parsedMv} (consumption stops)`, `DROP VIEW IF EXISTS ${q(n.parsedMv)} SYNC`),
      statement(`drop table ${n.queue} (consumption stops)`, `DROP TABLE IF EXISTS ${q(n.queue)} SYNC`),
      statement(`drop view ${n.stagingMv}`, `DROP VIEW IF EXISTS ${q(n.stagingMv)} SYNC`),
      statement(`drop view ${n.errorsMv}`, `DROP VIEW IF EXISTS ${q(n.errorsMv)} SYNC`),
    ];
    // Messages are parsed and checked once, into a Null table; its two views split them into
    // staging and dead letters. The queue and the view that reads it come last: they start consumption.
    out.push(
      statement(
        `parsed messages ${n.parsed}`,
        `CREATE TABLE IF NOT EXISTS ${q(n.parsed)}
(
${columnList(p)},
    \`__t\` DateTime64(3, 'UTC'),
    \`_raw\` String,
    \`_topic\` LowCardinality(String),
    \`_partition\` UInt32,
    \`_offset\` UInt64,
    \`_timestamp_ms\` Nullable(DateTime64(3, 'UTC')),
    \`_ingested_at\` DateTime64(3, 'UTC'),
    \`__error\` String
)
ENGINE = Null`,
      ),
      statement(
        `dead-letter view ${n.errorsMv}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.errorsMv)} TO ${q(n.errors)}
AS SELECT \`_raw\`, \`__error\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`
FROM ${q(n.parsed)}
WHERE \`__error\` != ''`,
      ),
      statement(
        `staging view ${n.stagingMv}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.stagingMv)} TO ${q(n.staging)}
AS SELECT ${names(p.columns.map((c) => c.name))}, \`__t\`, \`_topic\`, \`_partition\`, \`_offset\`, \`_timestamp_ms\`, \`_ingested_at\`
FROM ${q(n.parsed)}
WHERE \`__error\` = ''`,
      ),
    );
    // The engine writes a block at least every 500 ms: bounds produce-to-staging latency (its default is 7.5 s).
    const queue = (redact: boolean): string => `CREATE TABLE IF NOT EXISTS ${q(n.queue)}
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
    kafka_num_consumers = ${p.source.consumers},
    kafka_flush_interval_ms = 500${kafkaAuthSettings(p, ctx.kafkaPassword, redact)}`;
    out.push({ title: `Kafka queue ${n.queue}`, sql: queue(false), display: queue(true) });
    out.push(
      statement(
        `parsing view ${n.parsedMv}`,
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(n.parsedMv)} TO ${q(n.parsed)}\nAS ${validatedSelect(p, q(n.queue))}`,
      ),
    );
    await ctx.run(out);
  },
  async down(ctx) {
    // Takes the consumption path apart, consumption first, and does not rebuild what an older
    // 0002 built: that would start consuming again. Down always continues to 0002's down, which
    // drops the rest (its drops of the parsing view, queue, parsed table and its views find nothing left).
    const n = names0009(ctx.pipeline);
    const q = (t: string): string => qualified(ctx.pipeline.sink.database, t);
    await ctx.run([
      statement(`drop view ${n.parsedMv}`, `DROP VIEW IF EXISTS ${q(n.parsedMv)} SYNC`),
      statement(`drop table ${n.queue}`, `DROP TABLE IF EXISTS ${q(n.queue)} SYNC`),
      statement(`drop view ${n.stagingMv}`, `DROP VIEW IF EXISTS ${q(n.stagingMv)} SYNC`),
      statement(`drop view ${n.errorsMv}`, `DROP VIEW IF EXISTS ${q(n.errorsMv)} SYNC`),
      statement(`drop table ${n.parsed}`, `DROP TABLE IF EXISTS ${q(n.parsed)} SYNC`),
    ]);
  },
};
