import type { SliceRecord } from '../pipeline/checkpoints.ts';
import type { CheckReport } from '../pipeline/checker.ts';
import type { ReplayResult } from '../pipeline/replay.ts';
export interface PipelineSummary { name: string; topics: string[]; table: string; database: string; windowMs: number; key: string[] }
export interface PartitionStats { topic: string; partition: number; nextOffset: number; stagedHigh: number | null; logEnd: number | null; consumerOffset: number | null; lag: number | null }
export interface PipelineStats {
  name: string;
  messagesConsumed: number;   // staged + dead letters
  staged: number;
  inserted: number;
  duplicatesDropped: number;
  duplicateRatio: number;     // duplicatesDropped / (inserted + duplicatesDropped), 0 when none
  deadLetters: number;
  pendingRows: number;        // staged but not yet in a committed slice
  partitions: PartitionStats[];
  lastSlice: { sliceId: string; seq: number; committedAt: string | null; durationMs: number; rowsIn: number; inserted: number; duplicates: number } | null;
  eventsPerSecond: { last1m: number; last5m: number };
  lastError: string | null;   // the daemon's most recent failure for this pipeline, if any
}
export interface Readiness { ready: boolean; checks: Record<string, { ok: boolean; error?: string }> }
export interface AppDeps {
  pipelines(): PipelineSummary[];
  stats(name: string): Promise<PipelineStats>;          // the app checks the name against pipelines() first -> 404
  slices(name: string, limit: number): Promise<SliceRecord[]>;
  readiness(): Promise<Readiness>;
  /** the newest consistency report, or null before the first check */
  consistency(name: string): Promise<CheckReport | null>;
  /** runs a replay; `bearer` is the token the client sent (UNAUTHORIZED when it is not the configured one) */
  replay(name: string, req: ReplayBody, bearer: string | undefined): Promise<ReplayResult>;
}
export interface ReplayBody { fromTimestamp?: string; fromOffsets?: string; to?: string }
