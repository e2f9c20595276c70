/** What the daemon says about a slice it ran: its log line and what it reports to the metrics (observer). */
import { formatRange } from '../kafka/partitions.ts';
import type { Logger } from '../log.ts';
import type { SliceOutcome } from '../slicing/processor.ts';
import type { DaemonObserver } from './observer.ts';

/** A committed slice (not a split: that one commits nothing) for the metrics. */
export function observeSlice(observer: DaemonObserver, pipeline: string, o: SliceOutcome): void {
  if (o.split) return;
  const s = o.slice;
  const committedAtMs = s.committedAt ? Date.parse(s.committedAt) : Date.now();
  observer.sliceCommitted(pipeline, {
    rowsIn: s.rowsIn,
    inserted: s.inserted,
    duplicates: s.duplicates,
    rejected: s.rejected,
    durationMs: s.durationMs,
    committedAtMs,
    oldestEventMs: o.oldestEventMs ?? null,
  });
  observer.progressed(pipeline, committedAtMs);
}

/** The log line of a slice: info for a committed one, warn for a refused message, debug for a split. */
export function logSlice(logger: Logger, pipeline: string, o: SliceOutcome): void {
  const s = o.slice;
  const ranges = s.ranges.map(formatRange).join(' ');
  if (o.split) {
    // Halving towards the refused messages: one line each would flood the log.
    logger.debug('slice split: the final table refused some of its rows; next slice is its first half', {
      pipeline: pipeline,
      slice: s.sliceId,
      seq: s.seq,
      next: ranges,
      reason: o.split.reason,
    });
    return;
  }
  if (o.refused) {
    logger.warn('message refused by the final table: sent to the dead letters', {
      pipeline: pipeline,
      slice: s.sliceId,
      seq: s.seq,
      message: ranges,
      reason: o.refused.reason,
    });
    return;
  }
  logger.info('slice', {
    pipeline: pipeline,
    slice: s.sliceId,
    seq: s.seq,
    resumed: o.resumed,
    rowsIn: s.rowsIn,
    inserted: s.inserted,
    duplicates: s.duplicates,
    durationMs: Math.round(s.durationMs),
    ranges,
  });
}
