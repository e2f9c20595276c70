/** The pipelines of the config file, their statistics, their recent slices, history, dead letters, checks and replays. */
import type { FastifyPluginCallback } from 'fastify';
import { WinnowError } from '../../errors.ts';
import type { AppDeps } from '../deps.ts';
import { BEARER_SCHEME } from '../openapi.ts';
import {
  CheckList,
  ConsistencyResponse,
  DeadLetterOverviewSchema,
  ErrorResponse,
  HistoryQuery,
  HistorySchema,
  PipelineList,
  PipelineParams,
  PipelineStatsSchema,
  RecentQuery,
  ReplayJobList,
  ReplayJobParams,
  ReplayJobSchema,
  ReplayRequestBody,
  SliceList,
  SlicesQuery,
} from '../schemas.ts';
import type { ZodTypeProvider } from '../zod-provider.ts';

export function requirePipeline(deps: AppDeps, name: string): void {
  if (!deps.pipelines().some((p) => p.name === name)) {
    throw new WinnowError('NOT_FOUND', `no pipeline named ${JSON.stringify(name)}`);
  }
}

export const pipelineRoutes: FastifyPluginCallback<{ deps: AppDeps }> = (fastify, { deps }, done) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/pipelines',
    {
      schema: {
        operationId: 'listPipelines',
        summary: 'The pipelines of the config file.',
        response: { 200: PipelineList, 500: ErrorResponse },
      },
    },
    () => ({ pipelines: deps.pipelines() }),
  );

  app.get(
    '/pipelines/:name/stats',
    {
      schema: {
        operationId: 'getPipelineStats',
        summary: 'Counters, per-partition offsets and lag, and the last slice of one pipeline.',
        params: PipelineParams,
        response: {
          200: PipelineStatsSchema,
          400: ErrorResponse,
          404: ErrorResponse,
          500: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return deps.stats(request.params.name);
    },
  );

  app.get(
    '/pipelines/:name/slices',
    {
      schema: {
        operationId: 'listSlices',
        summary: 'The newest slices of one pipeline, newest first.',
        params: PipelineParams,
        querystring: SlicesQuery,
        response: { 200: SliceList, 400: ErrorResponse, 404: ErrorResponse, 500: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return { slices: await deps.slices(request.params.name, request.query.limit) };
    },
  );
  app.get(
    '/pipelines/:name/consistency',
    {
      schema: {
        operationId: 'getConsistency',
        summary:
          'The newest consistency report: uniqueness, completeness, seen keys vs final rows, Kafka offsets vs staging.',
        params: PipelineParams,
        response: {
          200: ConsistencyResponse,
          400: ErrorResponse,
          404: ErrorResponse,
          500: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return { report: (await deps.consistency(request.params.name)) as Record<string, unknown> | null };
    },
  );

  app.post(
    '/pipelines/:name/replay',
    {
      schema: {
        operationId: 'replay',
        security: [{ [BEARER_SCHEME]: [] }],
        summary:
          'Queue a replay of processed offsets from an offset or a timestamp for the daemon holding the pipeline, ' +
          'which runs it between slices; adds no row for a key already represented within the window. ' +
          'Answers 202 with the job at once: ' +
          'follow it at /pipelines/{name}/replays/{id}. Needs `Authorization: Bearer <api.replayToken>`.',
        params: PipelineParams,
        body: ReplayRequestBody,
        response: {
          202: ReplayJobSchema,
          400: ErrorResponse,
          401: ErrorResponse,
          404: ErrorResponse,
          500: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      requirePipeline(deps, request.params.name);
      const auth = request.headers.authorization;
      const bearer = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined;
      const job = await deps.replay(request.params.name, request.body, bearer);
      const location = `${request.url.replace(/\/replay$/, '')}/replays/${job.jobId}`;
      return reply.status(202).header('location', location).send(job);
    },
  );

  app.get(
    '/pipelines/:name/replays/:id',
    {
      schema: {
        operationId: 'getReplayJob',
        summary:
          'State (queued, running, done, failed) and progress of a replay or dead-letter replay job, ' +
          'and its result once done.',
        params: ReplayJobParams,
        response: {
          200: ReplayJobSchema,
          400: ErrorResponse,
          404: ErrorResponse,
          500: ErrorResponse,
          503: ErrorResponse,
        },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return deps.replayJob(request.params.name, request.params.id);
    },
  );
  const errors = { 400: ErrorResponse, 404: ErrorResponse, 500: ErrorResponse, 503: ErrorResponse };

  app.get(
    '/pipelines/:name/history',
    {
      schema: {
        operationId: 'getHistory',
        summary:
          'Per minute over the last minutes (default 60): messages arrived, rows processed, inserted, duplicates, ' +
          "dead letters, slices and rows waiting, from winnow's own tables.",
        params: PipelineParams,
        querystring: HistoryQuery,
        response: { 200: HistorySchema, ...errors },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return deps.history(request.params.name, request.query.minutes);
    },
  );

  app.get(
    '/pipelines/:name/deadletters',
    {
      schema: {
        operationId: 'getDeadLetters',
        summary:
          'How many dead letters, their reasons (most frequent first) and the newest of them (default 10), ' +
          "without the messages' text.",
        params: PipelineParams,
        querystring: RecentQuery,
        response: { 200: DeadLetterOverviewSchema, ...errors },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return deps.deadLetters(request.params.name, request.query.limit);
    },
  );

  app.get(
    '/pipelines/:name/checks',
    {
      schema: {
        operationId: 'listChecks',
        summary: 'The newest consistency checks (default 10), newest first: what failed, what was repaired.',
        params: PipelineParams,
        querystring: RecentQuery,
        response: { 200: CheckList, ...errors },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return { checks: await deps.checks(request.params.name, request.query.limit) };
    },
  );

  app.get(
    '/pipelines/:name/replays',
    {
      schema: {
        operationId: 'listReplayJobs',
        summary: 'The newest replay and dead-letter replay jobs (default 10), newest first, with their progress.',
        params: PipelineParams,
        querystring: RecentQuery,
        response: { 200: ReplayJobList, ...errors },
      },
    },
    async (request) => {
      requirePipeline(deps, request.params.name);
      return { jobs: await deps.replays(request.params.name, request.query.limit) };
    },
  );
  done();
};
