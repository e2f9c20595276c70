import type { SliceRecord } from '../slicing/checkpoints.ts';
import type { CheckReport } from '../operations/checker.ts';
import type { ReplayJobStatus } from '../operations/replay-jobs.ts';
import type { PipelineStats } from '../operations/stats.ts';
export type { PartitionStats, PipelineStats } from '../operations/stats.ts';
export interface PipelineSummary {
  name: string;
  topics: string[];
  table: string;
  database: string;
  windowMs: number;
  key: string[];
}
import type { RunnerHealth } from '../daemon/daemon.ts';
export type PipelineHealth = RunnerHealth;
export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
  /** per pipeline: processing, standby or failing, the lease holder, the last error (no row values) */
  pipelines?: Record<string, PipelineHealth>;
}
export interface AppDeps {
  pipelines(): PipelineSummary[];
  stats(name: string): Promise<PipelineStats>; // the app checks the name against pipelines() first -> 404
  slices(name: string, limit: number): Promise<SliceRecord[]>;
  readiness(): Promise<Readiness>;
  /** the newest consistency report, or null before the first check */
  consistency(name: string): Promise<CheckReport | null>;
  /**
   * queues a replay job for the pipeline's lease holder; `bearer` is the token the client sent
   * (UNAUTHORIZED when it is not the configured one)
   */
  replay(name: string, req: ReplayBody, bearer: string | undefined): Promise<ReplayJobStatus>;
  /** a replay job's state and progress (NOT_FOUND when the pipeline has no such job) */
  replayJob(name: string, jobId: string): Promise<ReplayJobStatus>;
}
export interface ReplayBody {
  fromTimestamp?: string;
  fromOffsets?: string;
  to?: string;
}
export type { ReplayJobStatus } from '../operations/replay-jobs.ts';
