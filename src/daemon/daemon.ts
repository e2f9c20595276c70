/**
 * The daemon of `winnow run`: one runner per pipeline (runner.ts), started
 * together, stopped together, and the refusal to start where a token-reliant
 * write could silently lose its deduplication.
 */
import { describeError, WinnowError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { holderIdentity } from '../slicing/lease.ts';
import type { StepHooks } from '../slicing/processor.ts';
import { PipelineRunner, type PipelineHandle, type RunnerOptions } from './runner.ts';

export type { PipelineHandle, RunnerHealth, RunnerOptions, RunnerState } from './runner.ts';

export class Daemon {
  readonly runners: PipelineRunner[];

  constructor(
    handles: PipelineHandle[],
    private readonly logger: Logger,
    hooks: StepHooks = {},
    options: RunnerOptions = {},
  ) {
    this.runners = handles.map((h) => new PipelineRunner(h.pipeline, h.db, logger, hooks, h.kafka, {}, options));
  }

  /** Starts every pipeline's runner; the lease names this daemon by its API address and config file. */
  start(identity: { api?: string; config?: string } = {}): void {
    const owner = holderIdentity(identity);
    for (const r of this.runners) r.start(owner);
  }

  /**
   * Refuses to start where a token-reliant write could silently lose its
   * deduplication (throws DEDUP_UNSAFE). Other failures, such as ClickHouse not
   * answering yet, are logged: each runner proves it before its first slice.
   */
  async verifyDeduplication(): Promise<void> {
    for (const r of this.runners) {
      try {
        await r.verifyDeduplication();
      } catch (err) {
        if (err instanceof WinnowError && err.code === 'DEDUP_UNSAFE') throw err;
        this.logger.warn('insert deduplication not verified yet: will verify before the first slice', {
          pipeline: r.pipeline.name,
          error: describeError(err),
        });
      }
    }
  }

  runner(name: string): PipelineRunner | undefined {
    return this.runners.find((r) => r.pipeline.name === name);
  }

  /** Stops every runner: slices in flight finish, then each lease is released. */
  async stop(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.stop()));
  }
}
