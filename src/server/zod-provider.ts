/**
 * Lets routes declare zod schemas directly in fastify's `schema` option:
 * inputs are parsed (coerced, defaulted) by zod, and every JSON response is
 * parsed against its declared schema before it is written, so a handler that
 * drifts from the documented contract fails loudly instead of leaking a shape
 * nobody promised.
 */
import type { FastifySchemaCompiler, FastifySerializerCompiler, FastifyTypeProvider } from 'fastify';
import { z } from 'zod';
import { WinnowError } from '../errors.ts';

declare module 'fastify' {
  interface FastifySchema {
    /** OpenAPI operationId: a stable name for generated clients. */
    operationId?: string;
    /** One line for the OpenAPI operation. */
    summary?: string;
    description?: string;
  }
}

export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

function isZod(schema: unknown): schema is z.ZodType {
  return schema instanceof z.ZodType;
}

const partNames: Record<string, string> = {
  querystring: 'query parameter',
  params: 'path parameter',
  body: 'body field',
  headers: 'header',
};

/** "query parameter "limit": must be an integer from 1 to 1000" — names what to fix. */
export function describeIssues(httpPart: string | undefined, issues: z.core.$ZodIssue[]): string {
  const part = partNames[httpPart ?? ''] ?? 'input';
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown ${part} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      if (issue.path.length === 0) return `${part}: ${issue.message}`;
      return `${part} "${issue.path.map(String).join('.')}": ${issue.message}`;
    })
    .join('; ');
}

export const zodValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  if (!isZod(schema)) throw new WinnowError('INTERNAL', `route schema for ${httpPart ?? 'input'} is not a zod schema`);
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    // fastify keeps the code and adds statusCode 400; the error handler maps USAGE to 400.
    return { error: new WinnowError('USAGE', describeIssues(httpPart, result.error.issues)) };
  };
};

export const zodSerializerCompiler: FastifySerializerCompiler<unknown> = ({ schema, method, url, httpStatus }) => {
  if (!isZod(schema))
    throw new WinnowError('INTERNAL', `response schema for ${method} ${url} ${httpStatus} is not a zod schema`);
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (!result.success) {
      throw new WinnowError(
        'INTERNAL',
        `response of ${method} ${url} (${httpStatus}) does not match its schema: ${z.prettifyError(result.error)}`,
        {
          cause: result.error,
        },
      );
    }
    return JSON.stringify(result.data);
  };
};
