/**
 * The ClickHouse privileges each kind of command needs, from the statements
 * it issues. `migrate up` creates, drops (0009 rebuilds the consumption path)
 * and alters the pipeline's objects; `run` (and `check`, `replay`,
 * `deadletters`, which issue the same statements) reads, inserts, deletes
 * rows (lightweight DELETE and DROP PARTITION both need ALTER DELETE) and,
 * for a replay that rewinds the Kafka engine, detaches and attaches the queue
 * (DETACH needs DROP TABLE, ATTACH needs CREATE TABLE and the engine's grant),
 * and its start reads the MergeTree defaults (system.merge_tree_settings, which
 * unlike system.tables or system.settings needs a grant). Every CREATE TABLE
 * needs TABLE ENGINE on its engine. When a statement changes, change its line
 * here; test/e2e/preflight.test.ts runs both commands with exactly these.
 */
import { ident, qualified } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { objectNames } from './objects.ts';

export type GrantPurpose = 'migrate' | 'run';

export const GRANT_PURPOSES: Record<GrantPurpose, string> = {
  migrate: 'migrate up',
  run: 'run, check, replay and deadletters',
};

export interface GrantNeed {
  /** as GRANT spells it: SELECT, ALTER DELETE, TABLE ENGINE */
  privilege: string;
  /** the object, quoted as GRANT takes it: `db`.*, `db`.`table`, or an engine name */
  on: string;
}

/** Engines of the tables `migrate up` creates, besides the final table's. */
const MIGRATE_ENGINES = ['MergeTree', 'ReplacingMergeTree', 'Null', 'Kafka'];

export function requiredGrants(p: PipelineConfig, purpose: GrantPurpose): GrantNeed[] {
  const db = `${ident(p.sink.database)}.*`;
  const on = (privileges: string[], object: string): GrantNeed[] =>
    privileges.map((privilege) => ({ privilege, on: object }));
  if (purpose === 'run') {
    return [
      ...on(['SELECT', 'INSERT', 'ALTER DELETE'], db),
      ...on(['DROP TABLE', 'CREATE TABLE'], qualified(p.sink.database, objectNames(p).queue)),
      ...on(['TABLE ENGINE'], '`Kafka`'),
      ...on(['SELECT'], 'system.merge_tree_settings'),
    ];
  }
  const engine = /^[A-Za-z]+/.exec(p.sink.engine)?.[0];
  const engines = [
    ...MIGRATE_ENGINES,
    ...(p.sink.mode === 'create' && engine && !MIGRATE_ENGINES.includes(engine) ? [engine] : []),
  ];
  return [
    ...on(['CREATE DATABASE', 'CREATE TABLE', 'DROP TABLE', 'CREATE VIEW', 'DROP VIEW', 'SELECT', 'INSERT'], db),
    // 0005-0007 and 0010 alter tables they or earlier migrations created
    ...on(['ALTER ADD COLUMN', 'ALTER MODIFY COLUMN', 'ALTER TTL', 'ALTER SETTINGS', 'ALTER ADD CONSTRAINT'], db),
    ...engines.flatMap((e) => on(['TABLE ENGINE'], `\`${e}\``)),
  ];
}

/** `GRANT a, b ON x TO user; GRANT c ON y TO user`: the statements that give `user` what is missing. */
export function grantStatements(missing: GrantNeed[], user: string): string {
  const byObject = new Map<string, string[]>();
  for (const m of missing) byObject.set(m.on, [...(byObject.get(m.on) ?? []), m.privilege]);
  const to = /^[A-Za-z_][A-Za-z0-9_]*$/.test(user) ? user : `\`${user.replaceAll('`', '``')}\``;
  return [...byObject].map(([object, privileges]) => `GRANT ${privileges.join(', ')} ON ${object} TO ${to}`).join('; ');
}
