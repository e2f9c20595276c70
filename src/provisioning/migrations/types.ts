import type { Db } from '../../clickhouse/client.ts';
import type { PipelineConfig } from '../../config/schema.ts';

/**
 * One statement of a migration. Declared here, not taken from the live
 * builders (objects.ts), so a migration depends on nothing that changes.
 */
export interface MigrationStatement {
  /** what it does, for --dry-run and progress output */
  title: string;
  sql: string;
  /** SQL text safe to print (secrets replaced) */
  display: string;
}

/** What a migration gets: the pipeline it provisions and a way to run (or, in --dry-run, print) statements. */
export interface MigrationContext {
  db: Db;
  pipeline: PipelineConfig;
  kafkaPassword: string | undefined;
  /** final table exists already (checked against the columns before anything runs) */
  finalExists: boolean;
  dropFinal: boolean;
  run(statements: MigrationStatement[]): Promise<void>;
}

export interface WinnowMigration {
  /** fixed-width number and a name, e.g. 0001_slices */
  name: string;
  up(ctx: MigrationContext): Promise<void>;
  down(ctx: MigrationContext): Promise<void>;
}

/** A statement whose SQL is safe to print as it is. */
export function statement(title: string, sql: string): MigrationStatement {
  return { title, sql, display: sql };
}
