/**
 * Fault injection for the crash tests: WINNOW_FAULT=<step>@<seq> makes the
 * daemon kill itself with SIGKILL at that step of the slice with that
 * sequence number. Steps: beforeInsert, duringInsert (the insert request is
 * sent, its answer not read), afterInsert (before the checkpoint), afterCommit;
 * afterReplayChunk@N kills it once chunk N of a replay job is inserted and
 * recorded, before the job's progress says so.
 * Not for production use; unset, it does nothing.
 */
import { WinnowError } from '../errors.ts';
import type { StepHooks } from './processor.ts';

const STEPS = ['beforeInsert', 'duringInsert', 'afterInsert', 'afterCommit', 'afterReplayChunk'] as const;
type Step = (typeof STEPS)[number];

export function parseFault(spec: string | undefined): { step: Step; seq: number } | undefined {
  if (!spec) return undefined;
  const m = /^(\w+)@(\d+)$/.exec(spec);
  const step = m?.[1] as Step | undefined;
  if (!m || !step || !STEPS.includes(step)) {
    throw new WinnowError('USAGE', `WINNOW_FAULT must look like <step>@<slice seq> with step one of ${STEPS.join(', ')}, got "${spec}"`);
  }
  return { step, seq: Number(m[2]) };
}

export function faultHooks(spec: string | undefined, kill: () => void = () => process.kill(process.pid, 'SIGKILL')): StepHooks {
  const fault = parseFault(spec);
  if (!fault) return {};
  const at = (s: { seq: number }): void => {
    if (s.seq === fault.seq) kill();
  };
  switch (fault.step) {
    case 'beforeInsert':
      return { beforeInsert: at };
    case 'duringInsert':
      // give the request a moment to reach the server, then die with it in flight
      return { duringInsert: (s) => void setTimeout(() => at(s), 5) };
    case 'afterInsert':
      return { afterInsert: at };
    case 'afterCommit':
      return { afterCommit: at };
    case 'afterReplayChunk':
      return { afterReplayChunk: (chunk) => at({ seq: chunk }) };
  }
}
