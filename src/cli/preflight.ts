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

/** Where a command's pre-flight reports. */
export interface PreflightReport {
  /** what failing means for this command: "nothing was created", "not started" */
  outcome: string;
  /** a failed check, or the summary after them: one complete line each */
  fail: (line: string, check?: Check) => void;
  /** one line per pipeline that passed */
  ok: (line: string) => void;
  /**
   * Given (a daemon, which retries), a server that does not answer is not a
   * failure: it hears the check instead.
   */
  unreachable?: (line: string, check: Check) => void;
}

/**
 * The pre-flight of a command over the pipelines it loaded: false when a
 * check failed. Each failure is one line, `<key> "<value>": <problem> (<fix>)`,
 * then a summary says what it means for the command.
 */
export async function passesPreflight(
  config: WinnowConfig,
  targets: Target[],
  opts: PreflightOptions & PreflightReport,
): Promise<boolean> {
  const results = await preflightAll(config, targets, opts);
  const failed: Check[] = [];
  for (const c of results.flatMap((r) => r.checks)) {
    if (c.status !== 'failed') continue;
    if (c.unreachable && opts.unreachable) opts.unreachable(failureLine(c), c);
    else failed.push(c);
  }
  for (const c of failed) opts.fail(failureLine(c), c);
  if (failed.length > 0) {
    const n = failed.length === 1 ? '1 problem' : `${failed.length} problems`;
    opts.fail(`pre-flight failed (${n}); ${opts.outcome}`);
    return false;
  }
  for (const r of results) {
    const count = (f: (c: Check) => boolean): number => r.checks.filter(f).length;
    const ok = count((c) => c.status === 'ok');
    const skipped = count((c) => c.status === 'skipped');
    const silent = count((c) => c.status === 'failed'); // tolerated: a server that did not answer
    const rest = [skipped ? `${skipped} skipped` : '', silent ? `${silent} not answered` : ''].filter(Boolean);
    const name = r.target.pipeline.name;
    opts.ok(
      rest.length
        ? `pipeline ${name}: pre-flight incomplete (${ok} checks ok, ${rest.join(', ')})`
        : `pipeline ${name}: pre-flight ok (${ok} checks)`,
    );
  }
  return true;
}
