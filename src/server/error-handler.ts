/**
 * The one place errors become HTTP responses. Clients get a status and
 * `{ error: { code, message } }`; the stack goes to the log, never on the wire.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WinnowError } from '../errors.ts';

export interface HttpError {
  status: number;
  body: { error: { code: string; message: string } };
}

/** The status of fastify's own client errors (malformed JSON, unsupported media type, ...). */
function fastifyClientStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  if (typeof code !== 'string' || !code.startsWith('FST_') || typeof statusCode !== 'number') return undefined;
  return statusCode >= 400 && statusCode < 500 ? statusCode : undefined;
}

export function toHttpError(err: unknown): HttpError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof WinnowError) {
    if (err.code === 'NOT_FOUND') return { status: 404, body: { error: { code: err.code, message } } };
    if (err.code === 'USAGE') return { status: 400, body: { error: { code: err.code, message } } };
    if (err.code === 'UNAUTHORIZED') return { status: 401, body: { error: { code: err.code, message } } };
    if (err.code === 'CONFLICT') return { status: 409, body: { error: { code: err.code, message } } };
    // A server winnow depends on failed: the API itself is fine, the answer is unavailable for now.
    if (err.code === 'CLICKHOUSE' || err.code === 'KAFKA')
      return { status: 503, body: { error: { code: err.code, message } } };
    return { status: 500, body: { error: { code: err.code, message } } };
  }
  const clientStatus = fastifyClientStatus(err);
  if (clientStatus !== undefined) return { status: clientStatus, body: { error: { code: 'USAGE', message } } };
  return { status: 500, body: { error: { code: 'INTERNAL', message } } };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code: body.error.code, message: body.error.message }, 'request rejected');
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const body = {
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0] ?? ''}` },
    };
    return reply.status(404).send(body);
  });
}
