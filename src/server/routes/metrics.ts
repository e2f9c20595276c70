/** GET /metrics for Prometheus. One pipeline whose stats fail does not take the page down. */
import type { FastifyPluginCallback } from 'fastify';
import { describeError } from '../../errors.ts';
import type { AppDeps } from '../deps.ts';
import { metricFamilies, PROMETHEUS_CONTENT_TYPE, renderFamilies, type StatsOutcome } from '../prometheus.ts';
import { ErrorResponse, MetricsText } from '../schemas.ts';
import type { ZodTypeProvider } from '../zod-provider.ts';
import { readinessOf } from './health.ts';

export const metricsRoutes: FastifyPluginCallback<{ deps: AppDeps }> = (fastify, { deps }, done) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics of every pipeline.',
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
      const text = renderFamilies(metricFamilies(readiness.ready, outcomes));
      return reply.type(PROMETHEUS_CONTENT_TYPE).send(text);
    },
  );
  done();
};
