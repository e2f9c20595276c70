/**
 * What the daemon reports as it works, for the metrics (src/server/metrics.ts
 * implements it with prom-client). The daemon sits below the server, so it
 * knows only this interface; without one it reports to NO_OBSERVER.
 */

/** A slice as committed: its counts, how long it took, and the Kafka timestamp of its oldest message. */
export interface CommittedSlice {
  /** staged rows the slice took (a refused message counts here and in `rejected`) */
  rowsIn: number;
  inserted: number;
  duplicates: number;
  /** messages the final table refused, now dead letters */
  rejected: number;
  durationMs: number;
  /** when the 'committed' checkpoint was written (unix ms) */
  committedAtMs: number;
  /** the smallest Kafka timestamp among the slice's messages (unix ms); null when unknown */
  oldestEventMs: number | null;
}

/** A replay job's step outcome as the daemon ran it: claimed (or resumed), done, failed. */
export type ReplayEvent = 'started' | 'done' | 'failed';

export interface DaemonObserver {
  /** the daemon runs this pipeline: its series start at zero */
  track(pipeline: string): void;
  sliceCommitted(pipeline: string, slice: CommittedSlice): void;
  /** a slice attempt failed (it is retried) */
  sliceFailed(pipeline: string): void;
  /** a slice committed, or staging was found drained: the pipeline is caught up as of atMs */
  progressed(pipeline: string, atMs: number): void;
  /** whether this daemon holds the pipeline's lease, on every change */
  leaseHeld(pipeline: string, held: boolean): void;
  /** a consistency check finished */
  checked(pipeline: string, ok: boolean, atMs: number): void;
  replay(pipeline: string, event: ReplayEvent): void;
}

export const NO_OBSERVER: DaemonObserver = {
  track: () => undefined,
  sliceCommitted: () => undefined,
  sliceFailed: () => undefined,
  progressed: () => undefined,
  leaseHeld: () => undefined,
  checked: () => undefined,
  replay: () => undefined,
};
