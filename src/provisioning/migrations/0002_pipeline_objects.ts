import { downStatements0002, upStatements0002 } from './0002_pipeline_objects.render.ts';
import type { WinnowMigration } from './types.ts';

/**
 * The pipeline's tables and views: final table (create mode), staging, dead
 * letters, seen keys, the dedup entry point with its two views, the parsed
 * Null table with the two views into staging and dead letters, and last the
 * Kafka queue with the parsing view that starts consumption.
 *
 * Frozen as it last shipped (13f841f), rendered by its own copy of that day's
 * builders, not as it first shipped (ad4a3ad): the first version attached the
 * dead-letter view to the queue before the staging view existed, so the
 * engine consumed and committed valid messages that never reached staging,
 * on every new install. Databases whose 0002 ran in an older version are
 * brought to this one by 0009.
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
