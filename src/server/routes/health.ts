/** Liveness (the process answers) and readiness (it can do its work). */
import type { FastifyPluginCallback } from 'fastify';
import { describeError } from '../../errors.ts';
import type { AppDeps, Readiness } from '../deps.ts';
import { Health, ReadinessSchema } from '../schemas.ts';
import type { ZodTypeProvider } from '../zod-provider.ts';

/** readiness() failing is itself a readiness answer: not ready, and why. */
export async function readinessOf(deps: AppDeps): Promise<Readiness> {
  try {
    return await deps.readiness();
  } catch (err) {
    return { ready: false, checks: { readiness: { ok: false, error: describeError(err) } } };
  }
}

export const healthRoutes: FastifyPluginCallback<{ deps: AppDeps }> = (fastify, { deps }, done) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'getHealth',
        summary: 'Liveness: the process answers. Calls no dependency.',
        response: { 200: Health },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        summary:
          'Readiness: 200 when every check passes (each pipeline processing, or a healthy standby), ' +
          '503 otherwise (a pipeline failing).',
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (request, reply) => {
      const readiness = await readinessOf(deps);
      if (!readiness.ready) request.log.warn({ checks: readiness.checks }, 'not ready');
      return reply.status(readiness.ready ? 200 : 503).send(readiness);
    },
  );
  done();
};
