/**
 * A copy of the config that is safe to log: every secret (Kafka password,
 * ClickHouse password, replay token) is replaced by '***', literal or
 * `{ env: NAME }` alike.
 */
import type { Secret, WinnowConfig } from './types.ts';

export const REDACTED = '***';

const hide = (s: Secret | undefined): Secret | undefined => (s === undefined ? undefined : REDACTED);

export function redactConfig(cfg: WinnowConfig): WinnowConfig {
  const copy = structuredClone(cfg);
  for (const p of copy.pipelines) {
    const { auth } = p.source;
    if (auth.password !== undefined) auth.password = hide(auth.password);
    if (p.sink.password !== undefined) p.sink.password = hide(p.sink.password);
    if (p.api.replayToken !== undefined) p.api.replayToken = hide(p.api.replayToken);
  }
  return copy;
}
