-- The DDL winnow renders (src/provisioning/objects.ts) for the reference pipeline of test/unit/statements.test.ts:
-- every object at the latest version (latestStatements), then migrate down --drop-final.
-- Rewritten by `npx vitest run --project unit -u`; a change here is a schema change.

-- slices table winnow_slices
CREATE TABLE IF NOT EXISTS `default`.`winnow_slices`
(
    `pipeline` LowCardinality(String),
    `seq` UInt64,
    `slice_id` String,
    `status` Enum8('planned' = 1, 'committed' = 2, 'split' = 3),
    `ranges` Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64)),
    `next_offsets` Array(Tuple(topic String, partition UInt32, offset UInt64)),
    `rows_in` UInt64,
    `inserted` UInt64,
    `duplicates` UInt64,
    `rejected` UInt64 DEFAULT 0,
    `planned_at` DateTime64(3, 'UTC'),
    `committed_at` Nullable(DateTime64(3, 'UTC')),
    `duration_ms` UInt32
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `seq`, `status`)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000;

-- leases table winnow_leases
CREATE TABLE IF NOT EXISTS `default`.`winnow_leases`
(
    `pipeline` LowCardinality(String),
    `epoch` UInt64,
    `owner` String,
    `claimed_at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `gen` UInt32 DEFAULT 0,
    `kind` Enum8('claim' = 1, 'release' = 2) DEFAULT 'claim',
    `protocol` UInt8 DEFAULT 1,
    `note` String DEFAULT ''
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `epoch`)
TTL toDateTime(`claimed_at`) + INTERVAL 1 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- replays table winnow_replays
CREATE TABLE IF NOT EXISTS `default`.`winnow_replays`
(
    `pipeline` LowCardinality(String),
    `replay_id` String,
    `chunk` UInt32,
    `ranges` Array(Tuple(topic String, partition UInt32, from_offset UInt64, to_offset UInt64)),
    `rows_in` UInt64,
    `inserted` UInt64,
    `duplicates` UInt64,
    `reason` String,
    `at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `at`)
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000;

-- checks table winnow_checks
CREATE TABLE IF NOT EXISTS `default`.`winnow_checks`
(
    `pipeline` LowCardinality(String),
    `checked_at` DateTime64(3, 'UTC'),
    `ok` UInt8,
    `report` String
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `checked_at`)
TTL toDateTime(`checked_at`) + INTERVAL 30 DAY;

-- replay jobs table winnow_replay_jobs
CREATE TABLE IF NOT EXISTS `default`.`winnow_replay_jobs`
(
    `pipeline` LowCardinality(String),
    `job_id` String,
    `rev` UInt32,
    `kind` Enum8('replay' = 1, 'deadletters' = 2),
    `state` Enum8('queued' = 1, 'running' = 2, 'done' = 3, 'failed' = 4),
    `request` String,
    `requested_by` String,
    `requested_at` DateTime64(3, 'UTC'),
    `holder` String,
    `attempt` UInt32,
    `plan` String,
    `chunks_done` UInt32,
    `chunks_total` UInt32,
    `offsets_done` UInt64,
    `offsets_total` UInt64,
    `rows_in` UInt64,
    `inserted` UInt64,
    `result` String,
    `error` String,
    `updated_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `job_id`, `rev`)
TTL toDateTime(`updated_at`) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- leases of users: refuse claims of daemons older than lease protocol 2
ALTER TABLE `default`.`winnow_leases` ADD CONSTRAINT IF NOT EXISTS `lease_protocol_users` CHECK protocol >= 2 OR pipeline != 'users';

-- final table users_dedup
CREATE TABLE IF NOT EXISTS `default`.`users_dedup`
(
    `event_id` UUID,
    `user_id` UUID,
    `name` String,
    `email` String,
    `created_at` DateTime
)
ENGINE = MergeTree
ORDER BY (`event_id`)
SETTINGS non_replicated_deduplication_window = 10000;

-- staging table winnow_users_staging
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_staging`
(
    `event_id` UUID,
    `user_id` UUID,
    `name` String,
    `email` String,
    `created_at` DateTime,
    `__t` DateTime64(3, 'UTC'),
    `_topic` LowCardinality(String),
    `_partition` UInt32,
    `_offset` UInt64,
    `_timestamp_ms` Nullable(DateTime64(3, 'UTC')),
    `_ingested_at` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (`_topic`, `_partition`, `_offset`)
TTL toDateTime(`_ingested_at`) + INTERVAL 172800 SECOND;

-- dead letters winnow_users_errors
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_errors`
(
    `_raw` String,
    `__error` String,
    `_topic` LowCardinality(String),
    `_partition` UInt32,
    `_offset` UInt64,
    `_timestamp_ms` Nullable(DateTime64(3, 'UTC')),
    `_ingested_at` DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (`_topic`, `_partition`, `_offset`)
TTL toDateTime(`_ingested_at`) + INTERVAL 172800 SECOND;

-- seen keys winnow_users_seen
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_seen`
(
    `event_id` UUID,
    `__t` DateTime64(3, 'UTC'),
    `__slice` String,
    `__h` UInt64 MATERIALIZED sipHash64(`event_id`),
    `__at` DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toStartOfInterval(`__t`, INTERVAL 3600 SECOND)
ORDER BY (`event_id`)
TTL greatest(toDateTime(`__t`), `__at`) + INTERVAL 7200 SECOND
SETTINGS non_replicated_deduplication_window = 10000;

-- dedup entry point winnow_users_kept
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_kept`
(
    `event_id` UUID,
    `user_id` UUID,
    `name` String,
    `email` String,
    `created_at` DateTime,
    `__t` DateTime64(3, 'UTC'),
    `__slice` String
)
ENGINE = Null;

-- view winnow_users_kept_to_final_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `default`.`winnow_users_kept_to_final_mv` TO `default`.`users_dedup`
AS SELECT `event_id`, `user_id`, `name`, `email`, `created_at` FROM `default`.`winnow_users_kept`;

-- view winnow_users_kept_to_seen_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `default`.`winnow_users_kept_to_seen_mv` TO `default`.`winnow_users_seen`
AS SELECT `event_id`, `__t`, `__slice` FROM `default`.`winnow_users_kept`;

-- parsed messages winnow_users_parsed
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_parsed`
(
    `event_id` UUID,
    `user_id` UUID,
    `name` String,
    `email` String,
    `created_at` DateTime,
    `__t` DateTime64(3, 'UTC'),
    `_raw` String,
    `_topic` LowCardinality(String),
    `_partition` UInt32,
    `_offset` UInt64,
    `_timestamp_ms` Nullable(DateTime64(3, 'UTC')),
    `_ingested_at` DateTime64(3, 'UTC'),
    `__error` String
)
ENGINE = Null;

-- dead-letter view winnow_users_errors_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `default`.`winnow_users_errors_mv` TO `default`.`winnow_users_errors`
AS SELECT `_raw`, `__error`, `_topic`, `_partition`, `_offset`, `_timestamp_ms`, `_ingested_at`
FROM `default`.`winnow_users_parsed`
WHERE `__error` != '';

-- staging view winnow_users_staging_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `default`.`winnow_users_staging_mv` TO `default`.`winnow_users_staging`
AS SELECT `event_id`, `user_id`, `name`, `email`, `created_at`, `__t`, `_topic`, `_partition`, `_offset`, `_timestamp_ms`, `_ingested_at`
FROM `default`.`winnow_users_parsed`
WHERE `__error` = '';

-- Kafka queue winnow_users_queue
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_queue`
(
    `_raw` String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = 'localhost:9093',
    kafka_topic_list = 'users',
    kafka_group_name = 'winnow_users',
    kafka_format = 'RawBLOB',
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = 1,
    kafka_flush_interval_ms = 500,
    kafka_security_protocol = 'sasl_plaintext',
    kafka_sasl_mechanism = 'PLAIN',
    kafka_sasl_username = 'admin',
    kafka_sasl_password = '***';

-- parsing view winnow_users_parsed_mv
CREATE MATERIALIZED VIEW IF NOT EXISTS `default`.`winnow_users_parsed_mv` TO `default`.`winnow_users_parsed`
AS SELECT
    CAST(ifNull(`__v_event_id`, defaultValueOfTypeName('UUID')), 'UUID') AS `event_id`,
    CAST(ifNull(`__v_user_id`, defaultValueOfTypeName('UUID')), 'UUID') AS `user_id`,
    CAST(ifNull(`__v_name`, defaultValueOfTypeName('String')), 'String') AS `name`,
    CAST(ifNull(`__v_email`, defaultValueOfTypeName('String')), 'String') AS `email`,
    CAST(ifNull(`__v_created_at`, defaultValueOfTypeName('DateTime')), 'DateTime') AS `created_at`,
    ifNull(_timestamp_ms, now64(3)) AS `__t`,
    `_raw`, `_topic`, `_partition`, `_offset`, `_timestamp_ms`, `_ingested_at`,
    `__error`
FROM
(
    SELECT
        `_raw`,
        _topic AS `_topic`,
        toUInt32(_partition) AS `_partition`,
        _offset AS `_offset`,
        _timestamp_ms AS `_timestamp_ms`,
        now64(3) AS `_ingested_at`,
        multiIf(JSONType(_raw, 'event_id') = 'String', accurateCastOrNull(JSONExtractString(_raw, 'event_id'), 'UUID'), NULL) AS `__v_event_id`,
        multiIf(JSONType(_raw, 'user_id') = 'String', accurateCastOrNull(JSONExtractString(_raw, 'user_id'), 'UUID'), NULL) AS `__v_user_id`,
        multiIf(JSONType(_raw, 'user_name') = 'String', accurateCastOrNull(JSONExtractString(_raw, 'user_name'), 'String'), NULL) AS `__v_name`,
        multiIf(JSONType(_raw, 'user_email') = 'String', accurateCastOrNull(JSONExtractString(_raw, 'user_email'), 'String'), NULL) AS `__v_email`,
        multiIf(JSONType(_raw, 'created_at') = 'String', accurateCastOrNull(parseDateTime64BestEffortOrNull(JSONExtractString(_raw, 'created_at'), 6, 'UTC'), 'DateTime'), JSONType(_raw, 'created_at') IN ('Int64', 'UInt64', 'Double'), accurateCastOrNull(JSONExtractRaw(_raw, 'created_at'), 'DateTime'), NULL) AS `__v_created_at`,
        multiIf(
            length(_error) > 0, concat('unreadable message: ', _error),
            length(`_raw`) = 0, 'empty message',
            NOT isValidUTF8(`_raw`), 'invalid UTF-8',
            NOT isValidJSON(`_raw`), 'malformed JSON',
            JSONType(`_raw`) != 'Object', 'not a JSON object',
            isNull(`__v_event_id`), 'event_id: missing, null or not a UUID at $.event_id',
            isNull(`__v_user_id`), 'user_id: missing, null or not a UUID at $.user_id',
            isNull(`__v_name`), 'name: missing, null or not a String at $.user_name',
            isNull(`__v_email`), 'email: missing, null or not a String at $.user_email',
            isNull(`__v_created_at`), 'created_at: missing, null or not a DateTime at $.created_at',
            ''
        ) AS `__error`
    FROM `default`.`winnow_users_queue`
);

-- repairs log winnow_repairs
CREATE TABLE IF NOT EXISTS `default`.`winnow_repairs`
(
    `pipeline` LowCardinality(String),
    `repair_id` String,
    `step` Enum8('saved' = 1, 'deleting' = 2, 'done' = 3),
    `attempt` UInt32,
    `at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `keys` UInt64,
    `final_removed` UInt64,
    `seen_removed` UInt64,
    `restored` UInt64,
    `final_coords` Array(Tuple(String, UInt64)),
    `seen_coords` Array(Tuple(String, UInt64)),
    `note` String
)
ENGINE = MergeTree
ORDER BY (`pipeline`, `repair_id`, `step`, `attempt`)
TTL toDateTime(`at`) + INTERVAL 90 DAY;

-- saved final rows winnow_users_repair_final
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_repair_final`
(
    `__repair` String,
    `event_id` UUID,
    `user_id` UUID,
    `name` String,
    `email` String,
    `created_at` DateTime,
    `__found` UInt32,
    `__copies` UInt32,
    `__saved_at` DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (`__repair`, `event_id`)
TTL `__saved_at` + INTERVAL 90 DAY;

-- saved seen keys winnow_users_repair_seen
CREATE TABLE IF NOT EXISTS `default`.`winnow_users_repair_seen`
(
    `__repair` String,
    `event_id` UUID,
    `__t` DateTime64(3, 'UTC'),
    `__slice` String,
    `__at` DateTime,
    `__found` UInt32,
    `__copies` UInt32,
    `__saved_at` DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (`__repair`, `event_id`)
TTL `__saved_at` + INTERVAL 90 DAY;

-- drop view winnow_users_parsed_mv
DROP VIEW IF EXISTS `default`.`winnow_users_parsed_mv` SYNC;

-- drop table winnow_users_queue
DROP TABLE IF EXISTS `default`.`winnow_users_queue` SYNC;

-- drop view winnow_users_staging_mv
DROP VIEW IF EXISTS `default`.`winnow_users_staging_mv` SYNC;

-- drop view winnow_users_errors_mv
DROP VIEW IF EXISTS `default`.`winnow_users_errors_mv` SYNC;

-- drop table winnow_users_parsed
DROP TABLE IF EXISTS `default`.`winnow_users_parsed` SYNC;

-- drop view winnow_users_kept_to_seen_mv
DROP VIEW IF EXISTS `default`.`winnow_users_kept_to_seen_mv` SYNC;

-- drop view winnow_users_kept_to_final_mv
DROP VIEW IF EXISTS `default`.`winnow_users_kept_to_final_mv` SYNC;

-- drop table winnow_users_kept
DROP TABLE IF EXISTS `default`.`winnow_users_kept` SYNC;

-- drop table winnow_users_seen
DROP TABLE IF EXISTS `default`.`winnow_users_seen` SYNC;

-- drop table winnow_users_errors
DROP TABLE IF EXISTS `default`.`winnow_users_errors` SYNC;

-- drop table winnow_users_staging
DROP TABLE IF EXISTS `default`.`winnow_users_staging` SYNC;

-- drop table users_dedup
DROP TABLE IF EXISTS `default`.`users_dedup` SYNC;
