/** The pipeline definition: load, validate, default, resolve secrets, redact. */
export * from './duration.ts';
export * from './schema.ts';
export * from './load.ts';
export { formatPath } from './issues.ts';
export { REDACTED } from './redact.ts';
