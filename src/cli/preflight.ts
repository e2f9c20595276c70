/** The pre-flight of the commands that create or start something: migrate up and run (provisioning/preflight.ts). */
import type { WinnowConfig } from '../config/schema.ts';
import { failureLine, preflight, type Check, type PreflightOptions } from '../provisioning/preflight.ts';
import type { Target } from './context.ts';

export interface PipelineChecks {
  target: Target;
  checks: Check[];
}

/** Every check of the chosen pipelines, each pipeline named by its place in the file. */
export async function preflightAll(
  config: WinnowConfig,
  targets: Target[],
  opts: PreflightOptions,
): Promise<PipelineChecks[]> {
  const out: PipelineChecks[] = [];
  for (const target of targets) {
    out.push({
      target,
      checks: await preflight(target.pipeline, config.pipelines.indexOf(target.pipeline), target.db, opts),
    });
  }
  return out;
}

/**
 * Writes each failed check as one line, `<command>: <key> "<value>": <problem> (<fix>)`,
 * then a summary; returns the number of failures. With `tolerateUnreachable`
 * (a daemon, which retries), a server that does not answer is not a failure:
 * `warn` is told instead.
 */
export function reportFailures(
  command: string,
  results: PipelineChecks[],
  outcome: string,
  warn?: (line: string) => void,
): number {
  const failed: Check[] = [];
  for (const c of results.flatMap((r) => r.checks)) {
    if (c.status !== 'failed') continue;
    if (c.unreachable && warn) warn(failureLine(c));
    else failed.push(c);
  }
  for (const c of failed) process.stderr.write(`winnow ${command}: ${failureLine(c)}\n`);
  if (failed.length > 0) {
    const n = failed.length === 1 ? '1 problem' : `${failed.length} problems`;
    process.stderr.write(`winnow ${command}: pre-flight failed (${n}); ${outcome}\n`);
  }
  return failed.length;
}

/**
 * The pre-flight of a command over the pipelines it loaded: false when a
 * check failed (the failures are written, one line each). `ok` hears one line
 * per pipeline that passed.
 */
export async function passesPreflight(
  command: string,
  config: WinnowConfig,
  targets: Target[],
  opts: PreflightOptions & { outcome: string; ok: (line: string) => void; warn?: (line: string) => void },
): Promise<boolean> {
  const results = await preflightAll(config, targets, opts);
  if (reportFailures(command, results, opts.outcome, opts.warn) > 0) return false;
  for (const r of results) {
    const n = r.checks.filter((c) => c.status === 'ok').length;
    opts.ok(`pipeline ${r.target.pipeline.name}: pre-flight ok (${n} checks)`);
  }
  return true;
}
