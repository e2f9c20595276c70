/**
 * The web page at `/`: plain HTML, one ES module and a style sheet from
 * src/server/web/ (beside this folder, so a compiled dist/server/ finds its
 * dist/server/web/ the same way), and uPlot's files from its npm package.
 * No CDN, no build step. The page reads the JSON routes of /api/v1 and
 * /readyz, which need no token (only POST .../replay does), so it works
 * where api.replayToken is set, and it never asks for the token.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginCallback } from 'fastify';
import { z } from 'zod';
import { WinnowError } from '../../errors.ts';
import { ErrorResponse } from '../schemas.ts';
import type { ZodTypeProvider } from '../zod-provider.ts';

/** The page's own files. */
export const WEB_DIR = fileURLToPath(new URL('../web/', import.meta.url));

const require = createRequire(import.meta.url);

/** What /web/:file serves, and from where: the page's folder or an npm package. */
const FILES: Record<string, { path: () => string; type: string }> = {
  'app.js': { path: () => `${WEB_DIR}app.js`, type: 'text/javascript; charset=utf-8' },
  'style.css': { path: () => `${WEB_DIR}style.css`, type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': {
    path: () => require.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  'uPlot.min.css': { path: () => require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** Scripts and styles from this server only; data from this server only. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:";

const cache = new Map<string, Promise<string>>();
function load(path: string): Promise<string> {
  let file = cache.get(path);
  if (!file) {
    file = readFile(path, 'utf8');
    // A failed read is not kept: the next request tries again.
    file.catch(() => cache.delete(path));
    cache.set(path, file);
  }
  return file;
}

const Text = z.string();

export const webRoutes: FastifyPluginCallback = (fastify, _opts, done) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get(
    '/',
    {
      schema: {
        operationId: 'getWebPage',
        summary:
          'The web page: pipelines and their health, charts of the last hour, lag, slices, dead letters, checks ' +
          'and replays; refreshes itself every 5 seconds from the JSON routes.',
        response: { 200: { content: { 'text/html': { schema: Text } } }, 500: ErrorResponse },
      },
    },
    async (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', CSP)
        .header('cache-control', 'no-cache')
        .send(await load(`${WEB_DIR}index.html`)),
  );

  app.get(
    '/web/:file',
    {
      schema: {
        operationId: 'getWebFile',
        summary: `A file of the web page: ${Object.keys(FILES).join(', ')}.`,
        params: z.object({ file: z.string().describe('the file name') }),
        response: {
          200: { content: { 'text/javascript': { schema: Text }, 'text/css': { schema: Text } } },
          404: ErrorResponse,
          500: ErrorResponse,
        },
      },
    },
    async (request, reply) => {
      const file = Object.hasOwn(FILES, request.params.file) ? FILES[request.params.file] : undefined;
      if (!file) throw new WinnowError('NOT_FOUND', `no web file ${JSON.stringify(request.params.file)}`);
      return reply
        .type(file.type)
        .header('cache-control', 'no-cache')
        .send(await load(file.path()));
    },
  );
  done();
};
