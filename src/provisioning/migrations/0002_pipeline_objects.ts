import { downStatements0002, upStatements0002 } from './0002_pipeline_objects.render.ts';
import type { WinnowMigration } from './types.ts';

/**
 * The pipeline's tables and views: final table (create mode), staging, dead
 * letters, seen keys, the dedup entry point with its two views, and last the
 * Kafka queue with the views that start consumption. Frozen as first shipped
 * (ad4a3ad), rendered by its own copy of that day's builders; 0005 and 0009
 * bring these objects to their later versions.
 */
export const migration: WinnowMigration = {
  name: '0002_pipeline_objects',
  async up(ctx) {
    await ctx.run(
      upStatements0002(ctx.pipeline, {
        ...(ctx.kafkaPassword === undefined ? {} : { kafkaPassword: ctx.kafkaPassword }),
        createFinal: ctx.pipeline.sink.mode === 'create' && !ctx.finalExists,
      }),
    );
  },
  async down(ctx) {
    await ctx.run(downStatements0002(ctx.pipeline, { dropFinal: ctx.dropFinal }));
  },
};
