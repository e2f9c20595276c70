/** One consistency report in a line: what failed and what was repaired (the web page's list of checks). */
import type { CheckReport } from './checker.ts';

export interface CheckSummary {
  checkedAt: string;
  ok: boolean;
  mode: 'full' | 'incremental';
  durationMs: number;
  /** committed slices the check covered */
  slices: number;
  /** the parts that found a problem: uniqueness, doubled, completeness, seenVsFinal, counts, offsets, seenIndex */
  failed: string[];
  /** rows the check repaired: surplus copies removed, final rows re-inserted, seen keys restored, index entries written */
  repaired: number;
}

const PARTS = ['uniqueness', 'doubled', 'completeness', 'seenVsFinal', 'counts', 'offsets', 'seenIndex'] as const;

/** A report as stored: one written by an older winnow may lack parts. */
export function summarizeCheck(r: Partial<CheckReport>): CheckSummary {
  return {
    checkedAt: r.checkedAt ?? '',
    ok: r.ok ?? false,
    mode: r.scope?.mode ?? 'full',
    durationMs: r.durationMs ?? 0,
    slices: r.scope?.slices ?? 0,
    failed: PARTS.filter((part) => r[part]?.ok === false),
    repaired:
      (r.doubled?.finalRemoved ?? 0) +
      (r.seenVsFinal?.reinsertedFromStaging ?? 0) +
      (r.seenVsFinal?.seenRestored ?? 0) +
      (r.seenIndex?.repaired ?? 0),
  };
}
