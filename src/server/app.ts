/**
 * The HTTP API served by `winnow run`. A factory, so tests build it around
 * in-memory deps and drive it with app.inject; the caller decides when and
 * where to listen.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { AppDeps } from './deps.ts';
import { installErrorHandling } from './error-handler.ts';
import { WinnowMetrics } from './metrics.ts';
import type { RouteDoc } from './openapi.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { openApiRoutes } from './routes/openapi.ts';
import { pipelineRoutes } from './routes/pipelines.ts';
import { webRoutes } from './routes/web.ts';
import { zodSerializerCompiler, zodValidatorCompiler } from './zod-provider.ts';

export interface AppOptions {
  /** Log requests and errors as JSON lines on stderr (stdout stays free for command output). Default false. */
  logger?: boolean;
  /** the metrics /metrics serves, the daemon's observer; default a fresh registry of this app's own */
  metrics?: WinnowMetrics;
}

export function buildApp(deps: AppDeps, opts: AppOptions = {}): FastifyInstance {
  const app = Fastify({ logger: opts.logger ? { level: 'info', stream: process.stderr } : false });
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(zodSerializerCompiler);
  installErrorHandling(app);

  // Every route, as registered, for the OpenAPI document (fastify adds HEAD twins of GET routes; those stay implicit).
  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: route.url, schema: route.schema });
    }
  });

  void app.register(healthRoutes, { deps });
  void app.register(metricsRoutes, { deps, metrics: opts.metrics ?? new WinnowMetrics() });
  void app.register(pipelineRoutes, { deps, prefix: '/api/v1' });
  void app.register(openApiRoutes, { routes, prefix: '/api/v1' });
  void app.register(webRoutes);
  return app;
}
