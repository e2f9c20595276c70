import { downStatements, upStatements } from '../objects.ts';
import type { WinnowMigration } from './types.ts';

/**
 * The pipeline's tables and views: final table (create mode), staging, dead
 * letters, seen keys, the dedup entry point with its two views, and last the
 * Kafka queue with the views that start consumption.
 */
export const migration: WinnowMigration = {
  name: '0002_pipeline_objects',
  async up(ctx) {
    await ctx.run(
      upStatements(ctx.pipeline, {
        ...(ctx.kafkaPassword === undefined ? {} : { kafkaPassword: ctx.kafkaPassword }),
        createFinal: ctx.pipeline.sink.mode === 'create' && !ctx.finalExists,
      }),
    );
  },
  async down(ctx) {
    await ctx.run(downStatements(ctx.pipeline, { dropFinal: ctx.dropFinal }));
  },
};
