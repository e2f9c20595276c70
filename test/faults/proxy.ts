/** A TCP proxy in front of ClickHouse's HTTP port that breaks chosen requests (the transient-failure scenarios). */
import { appendFileSync } from 'node:fs';
import { rng } from '../support/oracle.ts';
import { resetProxy, type Fate } from '../support/reset-proxy.ts';

export type RequestKind = 'slice insert' | 'lease claim' | 'checkpoint' | 'other';

export interface BreakingProxy {
  url: string;
  /** requests seen, and how many were broken before and after reaching ClickHouse, per kind of request */
  counts: { requests: number; resetBefore: number; resetAfter: number; broken: Record<string, number> };
  close(): Promise<void>;
}

/**
 * What a request does, from its first bytes, by its deduplication token: the slice insert carries the slice id;
 * checkpoints `checkpoint:<slice>:<status>`, lease claims `lease:…`, releases `release:…`, replay chunks `replay:…`,
 * replay-job states `replay-job:…`. (Counting checkpoints as slice inserts put three tokened writes of every attempt
 * into the one-in-three cycle of slice-insert resets, so a slice needed three attempts and a busy machine's back-off
 * ran the scenario past its time limit.)
 */
export function requestKind(head: string): RequestKind {
  const raw = /[?&]insert_deduplication_token=([^&\s]*)/.exec(head)?.[1];
  if (raw === undefined) return 'other';
  const token = decodeURIComponent(raw);
  if (token.startsWith('checkpoint:')) return 'checkpoint';
  if (token.startsWith('lease:') || token.startsWith('release:')) return 'lease claim';
  if (/^[a-z]+(-[a-z]+)*:/.test(token)) return 'other';
  return 'slice insert';
}

/**
 * A TCP proxy in front of ClickHouse's HTTP port that breaks requests with a
 * TCP reset (socket.resetAndDestroy()), either before the request reaches
 * ClickHouse or after ClickHouse executed it and started answering (the
 * client never sees the answer: an insert that happened but looks failed).
 * Slice inserts: the 2nd of every 6 is reset before, the 4th after (a third).
 * Every other request (checkpoints, lease claims, reads): a seeded random
 * `otherShare`, half before, half after. A request is the first client bytes
 * after an answer on a keep-alive connection.
 */
export async function breakingProxy(
  target: { host: string; port: number },
  seed: number,
  otherShare: number,
  /** one line per request (time, kind, fate, its first bytes) appended here, for a scenario that fails */
  traceFile?: string,
): Promise<BreakingProxy> {
  const r = rng(seed);
  let inserts = 0;
  const counts: BreakingProxy['counts'] = { requests: 0, resetBefore: 0, resetAfter: 0, broken: {} };
  const tally = (k: string): void => {
    counts.broken[k] = (counts.broken[k] ?? 0) + 1;
  };
  const proxy = await resetProxy(target, (chunk) => {
    counts.requests++;
    const kind = requestKind(chunk.toString('latin1'));
    let fate: Fate;
    if (kind === 'slice insert') {
      inserts++;
      fate = inserts % 6 === 2 ? 'before' : inserts % 6 === 4 ? 'after' : undefined;
    } else {
      const roll = r();
      fate = roll < otherShare / 2 ? 'before' : roll < otherShare ? 'after' : undefined;
    }
    if (traceFile) {
      const line = chunk.toString('latin1', 0, 300).split('\r\n')[0];
      appendFileSync(traceFile, `${new Date().toISOString()} ${kind} ${fate ?? 'ok'} ${line}\n`);
    }
    // Counted when decided: a request reset after ClickHouse ran it always gets an answer to break.
    if (fate === 'before') counts.resetBefore++;
    if (fate === 'after') counts.resetAfter++;
    if (fate) tally(`${kind} ${fate}`);
    return fate;
  });
  return { url: proxy.url, counts, close: () => proxy.close() };
}
