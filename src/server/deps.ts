import type { SliceRecord } from '../slicing/checkpoints.ts';
import type { CheckReport } from '../operations/checker.ts';
import type { ReplayJobStatus } from '../operations/replay-jobs.ts';
import type { PipelineStats } from '../operations/stats.ts';
import type { PipelineHistory } from '../operations/history.ts';
import type { CheckSummary } from '../operations/check-summary.ts';
export type { PipelineHistory, HistoryBucket } from '../operations/history.ts';
export type { CheckSummary } from '../operations/check-summary.ts';
export type { PartitionStats, PipelineStats } from '../operations/stats.ts';
export interface PipelineSummary {
  name: string;
  topics: string[];
  table: string;
  database: string;
  windowMs: number;
  key: string[];
}
import type { RunnerHealth } from '../daemon/runner.ts';
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
  /** the last `minutes` minutes, one bucket per minute (the web page's charts) */
  history(name: string, minutes: number): Promise<PipelineHistory>;
  /** the dead letters' reasons and the newest of them, without the messages' text */
  deadLetters(name: string, limit: number): Promise<DeadLetterOverview>;
  /** the newest consistency checks, newest first */
  checks(name: string, limit: number): Promise<CheckSummary[]>;
  /** the newest replay and dead-letter replay jobs, newest first */
  replays(name: string, limit: number): Promise<ReplayJobStatus[]>;
}
export interface DeadLetterOverview {
  total: number;
  reasons: { error: string; count: number; last: string }[];
  recent: { topic: string; partition: number; offset: number; ingestedAt: string; error: string }[];
}
export interface ReplayBody {
  fromTimestamp?: string;
  fromOffsets?: string;
  to?: string;
}
export type { ReplayJobStatus } from '../operations/replay-jobs.ts';
