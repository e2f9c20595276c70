/** GET /api/v1/openapi.json: the contract of this API, generated from the routes' zod schemas. */
import type { FastifyPluginCallback } from 'fastify';
import { openApiDocument, type OpenApiDoc, type RouteDoc } from '../openapi.ts';
import { OpenApiDocument } from '../schemas.ts';
import type { ZodTypeProvider } from '../zod-provider.ts';

export const API_INFO = {
  title: 'winnow',
  version: '1',
  description:
    'The HTTP API of `winnow run`: health, pipelines, their statistics, slices, history, dead letters, checks and ' +
    'replays, Prometheus metrics, and the web page at /.',
};

export const openApiRoutes: FastifyPluginCallback<{ routes: readonly RouteDoc[] }> = (fastify, { routes }, done) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Built on first request: by then every plugin has registered its routes.
  let document: OpenApiDoc | undefined;

  app.get(
    '/openapi.json',
    {
      schema: {
        operationId: 'getOpenApi',
        summary: 'This document: OpenAPI 3.1, generated from the zod schemas of every route.',
        response: { 200: OpenApiDocument },
      },
    },
    () => (document ??= openApiDocument(routes, API_INFO)),
  );
  done();
};
