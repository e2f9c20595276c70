import type { Db } from '../../clickhouse/client.ts';
import type { PipelineConfig } from '../../config/schema.ts';
import type { Statement } from '../objects.ts';

/** What a migration gets: the pipeline it provisions and a way to run (or, in --dry-run, print) statements. */
export interface MigrationContext {
  db: Db;
  pipeline: PipelineConfig;
  kafkaPassword: string | undefined;
  /** final table exists already (checked against the columns before anything runs) */
  finalExists: boolean;
  dropFinal: boolean;
  run(statements: Statement[]): Promise<void>;
}

export interface WinnowMigration {
  /** fixed-width number and a name, e.g. 0001_slices */
  name: string;
  up(ctx: MigrationContext): Promise<void>;
  down(ctx: MigrationContext): Promise<void>;
}
