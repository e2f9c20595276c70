/**
 * The demo's last line: do the numbers winnow reports reconcile with what the
 * demo sent? Counts are this run's (the statistics after, less those before),
 * so a demo on servers that kept an earlier run's data still reconciles.
 */

export interface Sent {
  /** distinct events (new event ids) */
  events: number;
  /** copies of a recent event id */
  duplicates: number;
}

/** The pipeline's counters, as GET /api/v1/pipelines/:name/stats gives them. */
export interface Counters {
  messagesConsumed: number;
  inserted: number;
  duplicatesDropped: number;
  deadLetters: number;
  pendingRows: number;
}

export interface Verdict {
  ok: boolean;
  line: string;
}

export function demoVerdict(sent: Sent, before: Counters, after: Counters): Verdict {
  const total = sent.events + sent.duplicates;
  const inserted = after.inserted - before.inserted;
  const dropped = after.duplicatesDropped - before.duplicatesDropped;
  const consumed = after.messagesConsumed - before.messagesConsumed;
  const dead = after.deadLetters - before.deadLetters;
  const problems: string[] = [];
  if (total === 0) problems.push('nothing was sent');
  else if (consumed === 0) problems.push('nothing arrived in ClickHouse');
  else {
    if (consumed !== total) problems.push(`${consumed} consumed, not ${total}`);
    if (after.pendingRows > 0) problems.push(`${after.pendingRows} rows still waiting for a slice`);
    if (dead !== 0) problems.push(`${dead} dead letters`);
    if (inserted !== sent.events) problems.push(`inserted ${inserted}, not the ${sent.events} distinct sent`);
    if (dropped !== sent.duplicates) problems.push(`dropped ${dropped}, not the ${sent.duplicates} duplicates sent`);
  }
  if (problems.length === 0)
    return { ok: true, line: `OK: sent ${total}, inserted ${inserted} = distinct sent, dropped ${dropped}` };
  return {
    ok: false,
    line:
      `FAILED: sent ${total} (${sent.events} distinct, ${sent.duplicates} duplicates), ` +
      `inserted ${inserted}, dropped ${dropped}: ${problems.join('; ')}`,
  };
}
