/** GET /metrics for Prometheus. One pipeline whose stats fail does not take the page down. */
import type { FastifyPluginCallback } from 'fastify';
import { describeError } from '../../errors.ts';
import type { AppDeps } from '../deps.ts';
import type { WinnowMetrics } from '../metrics.ts';
import { observeScrape, PROMETHEUS_CONTENT_TYPE, type StatsOutcome } from '../prometheus.ts';
import { ErrorResponse, MetricsText } from '../schemas.ts';
import type { ZodTypeProvider } from '../zod-provider.ts';
import { readinessOf } from './health.ts';

export const metricsRoutes: FastifyPluginCallback<{ deps: AppDeps; metrics: WinnowMetrics }> = (
  fastify,
  { deps, metrics },
  done,
) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics: the daemon counters and histograms, table and lag gauges, process metrics.',
        response: { 200: { content: { [PROMETHEUS_CONTENT_TYPE]: { schema: MetricsText } } }, 500: ErrorResponse },
      },
    },
    async (request, reply) => {
      const names = deps.pipelines().map((p) => p.name);
      const [readiness, outcomes] = await Promise.all([
        readinessOf(deps),
        Promise.all(
          names.map(async (pipeline): Promise<StatsOutcome> => {
            try {
              return { pipeline, stats: await deps.stats(pipeline) };
            } catch (err) {
              request.log.warn({ pipeline, err }, 'stats unavailable for /metrics');
              return { pipeline, error: describeError(err) };
            }
          }),
        ),
      ]);
      observeScrape(metrics, readiness.ready, outcomes, readiness.pipelines);
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(await metrics.render());
    },
  );
  done();
};
