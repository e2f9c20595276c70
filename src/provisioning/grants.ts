/**
 * The ClickHouse grants winnow's commands need, per role, derived from the
 * statements they issue (README "Grants"). test/unit/grants.test.ts and
 * statements.test.ts hold every statement against them, both ways: each
 * statement needs nothing beyond its role's grants, and each grant is needed
 * by some statement. test/e2e/grants.test.ts runs the pipeline with them.
 *
 *  - migrate: `migrate up`, `down`, `status` (DDL, and the migration history);
 *  - run: `run`, `check`, `replay`, `deadletters replay` (and what read needs);
 *  - read: `stats`, `deadletters list`, `migrate status`.
 */
import type { PipelineConfig } from '../config/schema.ts';
import { ident, qualified } from '../clickhouse/sql.ts';
import { objectNames } from './objects.ts';

export type GrantRole = 'migrate' | 'run' | 'read';

/** On the database's objects: reads, writes, and DELETE and DROP PARTITION (both need ALTER DELETE). */
const RUN_DATABASE = ['SELECT', 'INSERT', 'ALTER DELETE'];

/**
 * DDL of the migrations and the migrator: tables (MergeTree, Null, Kafka), materialized views, their drops, the
 * ALTERs of upgrades (0005-0007, the final table's deduplication window, 0010's lease constraint) and of downs
 * (0005's DROP COLUMN, 0010's DROP CONSTRAINT), drift's in-place steps (a view's new query: MODIFY QUERY); DELETE (ALTER DELETE) for the history and down; SELECT and
 * INSERT for the history and the final table's columns.
 */
const MIGRATE_DATABASE = [
  'SELECT',
  'INSERT',
  'ALTER DELETE',
  'ALTER ADD COLUMN',
  'ALTER MODIFY COLUMN',
  'ALTER DROP COLUMN',
  'ALTER TTL',
  'ALTER SETTINGS',
  'ALTER ADD CONSTRAINT',
  'ALTER DROP CONSTRAINT',
  'ALTER VIEW MODIFY QUERY',
  'CREATE TABLE',
  'CREATE VIEW',
  'DROP TABLE',
  'DROP VIEW',
];

/** The engines of the tables winnow creates besides the final table (ReplacingMergeTree: the migration history). */
const INTERNAL_ENGINES = ['MergeTree', 'ReplacingMergeTree', 'Null', 'Kafka'];

/** `MergeTree` of `ReplicatedMergeTree('/p', '{replica}')`: the name TABLE ENGINE takes. */
export function engineName(engine: string): string {
  return engine.replace(/\(.*$/s, '').trim();
}

/**
 * The GRANT queries of a role, without a grantee (as users.xml's `<grants>`
 * takes them). CREATE DATABASE is not among them: `migrate up` creates the
 * database only when it is missing (createDatabaseGrant).
 */
export function grantQueries(role: GrantRole, p: PipelineConfig): string[] {
  const n = objectNames(p);
  const db = `${ident(n.database)}.*`;
  switch (role) {
    case 'read':
      return [`GRANT SELECT ON ${db}`];
    case 'run':
      return [
        `GRANT ${RUN_DATABASE.join(', ')} ON ${db}`,
        // The daemon's start check reads the servers' default deduplication windows.
        'GRANT SELECT ON system.merge_tree_settings',
        // A replay whose range staging no longer holds rewinds the Kafka engine: DETACH and ATTACH of the queue.
        `GRANT CREATE TABLE, DROP TABLE ON ${qualified(n.database, n.queue)}`,
        'GRANT TABLE ENGINE ON Kafka',
      ];
    case 'migrate': {
      // `dedup.index: rocksdb` adds the seen-key index (0013).
      const index = p.dedup.index === 'rocksdb' ? ['EmbeddedRocksDB'] : [];
      const engines = [...new Set([...INTERNAL_ENGINES, ...index, engineName(p.sink.engine)])];
      return [
        `GRANT ${MIGRATE_DATABASE.join(', ')} ON ${db}`,
        `GRANT ${engines.map((e) => `TABLE ENGINE ON ${e}`).join(', ')}`,
      ];
    }
  }
}

/** For `migrate up` on a database that does not exist yet. */
export function createDatabaseGrant(p: PipelineConfig): string {
  return `GRANT CREATE DATABASE ON ${ident(p.sink.database)}.*`;
}

/** Ready-to-run GRANT statements of a role for a user. */
export function grantStatements(role: GrantRole, p: PipelineConfig, user: string): string[] {
  return grantQueries(role, p).map((q) => `${q} TO ${ident(user)}`);
}
