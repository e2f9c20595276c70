/**
 * An OpenAPI 3.1 document built from the routes the app actually registered
 * (collected by an onRoute hook) and their zod schemas, via z.toJSONSchema.
 * OpenAPI 3.1 uses JSON Schema 2020-12, zod's default target, so the schemas
 * go in unchanged apart from their `$schema`/`$id` headers.
 */
import { STATUS_CODES } from 'node:http';
import type { RouteOptions } from 'fastify';
import { z } from 'zod';
import { components } from './schemas.ts';

export interface RouteDoc {
  method: string;
  url: string;
  schema: RouteOptions['schema'];
}

type JsonSchema = Record<string, unknown>;

const COMPONENTS_PREFIX = '#/components/schemas/';

/** The bearer token a route checks; a route says `security: [{ [BEARER_SCHEME]: [] }]` in its schema. */
export const BEARER_SCHEME = 'replayToken';

const SECURITY_SCHEMES = {
  [BEARER_SCHEME]: {
    type: 'http',
    scheme: 'bearer',
    description:
      "`Authorization: Bearer <api.replayToken>`, the pipeline's token from the configuration; " +
      'without one configured, the route answers 401 to everyone.',
  },
};

function strip(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const id = components.get(schema)?.id;
  if (id !== undefined) return { $ref: COMPONENTS_PREFIX + id };
  return strip(z.toJSONSchema(schema, { io, unrepresentable: 'any' }));
}

function componentSchemas(): Record<string, JsonSchema> {
  const { schemas } = z.toJSONSchema(components, {
    io: 'output',
    uri: (id) => COMPONENTS_PREFIX + id,
    unrepresentable: 'any',
  });
  return Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, strip(s as JsonSchema)]));
}

/** Path and query parameters, one per property of the object schema. */
function parameters(schema: unknown, location: 'path' | 'query'): JsonSchema[] {
  if (!(schema instanceof z.ZodType)) return [];
  const object = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(object.properties ?? {}).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: location,
      required: location === 'path' || (object.required ?? []).includes(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

function isContentMap(v: unknown): v is { content: Record<string, { schema: unknown }> } {
  return typeof v === 'object' && v !== null && 'content' in v && !(v instanceof z.ZodType);
}

function responses(response: unknown): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const [status, declared] of Object.entries((response ?? {}) as Record<string, unknown>)) {
    const content: Record<string, { schema: JsonSchema }> = {};
    if (declared instanceof z.ZodType) {
      content['application/json'] = { schema: jsonSchema(declared, 'output') };
    } else if (isContentMap(declared)) {
      for (const [media, { schema }] of Object.entries(declared.content)) {
        if (schema instanceof z.ZodType) content[media] = { schema: jsonSchema(schema, 'output') };
      }
    }
    out[status] = { description: STATUS_CODES[Number(status)] ?? status, content };
  }
  return out;
}

export type OpenApiInfo = {
  title: string;
  version: string;
  description?: string;
};

export type OpenApiDoc = {
  openapi: '3.1.0';
  info: OpenApiInfo;
  paths: Record<string, Record<string, JsonSchema>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
};

export function openApiDocument(routes: readonly RouteDoc[], info: OpenApiInfo): OpenApiDoc {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const schema = route.schema ?? {};
    const params = [...parameters(schema.params, 'path'), ...parameters(schema.querystring, 'query')];
    const security = (schema as { security?: unknown }).security;
    const operation: JsonSchema = {
      ...(schema.operationId ? { operationId: schema.operationId } : {}),
      ...(schema.summary ? { summary: schema.summary } : {}),
      ...(schema.description ? { description: schema.description } : {}),
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(Array.isArray(security) ? { security } : {}),
      responses: responses(schema.response),
    };
    (paths[path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: { schemas: componentSchemas(), securitySchemes: SECURITY_SCHEMES },
  };
}
