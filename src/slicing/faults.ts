/**
 * Fault injection for the crash and failover tests. Not for production use;
 * unset, it does nothing.
 *
 * WINNOW_FAULT=<step>@<seq> makes the daemon kill itself with SIGKILL at that
 * step of the slice with that sequence number. Steps: beforeInsert,
 * duringInsert (the insert request is sent, its answer not read), afterInsert
 * (before the counts and the checkpoint), afterCommit; afterReplayChunk@N kills it once chunk
 * N of a replay job is inserted and recorded, before the job's progress says so.
 *
 * WINNOW_FAULT=fail:<step> makes every slice of the daemon fail at that step
 * with an INJECTED_FAULT error (duringInsert: not supported), as a daemon that
 * cannot process would (its slice SQL deleted under it, say) while its lease
 * claims still work.
 */
import { WinnowError } from '../errors.ts';
import type { StepHooks } from './processor.ts';

const STEPS = ['beforeInsert', 'duringInsert', 'afterInsert', 'afterCommit', 'afterReplayChunk'] as const;
type Step = (typeof STEPS)[number];
type Fault =
  | { kind: 'kill'; step: Step; seq: number }
  | { kind: 'fail'; step: Exclude<Step, 'duringInsert' | 'afterReplayChunk'> };

export function parseFault(spec: string | undefined): Fault | undefined {
  if (!spec) return undefined;
  const fail = /^fail:(\w+)$/.exec(spec);
  if (fail) {
    const step = fail[1] as Step;
    if (!STEPS.includes(step) || step === 'duringInsert' || step === 'afterReplayChunk') {
      throw new WinnowError(
        'USAGE',
        `WINNOW_FAULT=fail:<step> takes a step among beforeInsert, afterInsert, afterCommit, got "${spec}"`,
      );
    }
    return { kind: 'fail', step };
  }
  const m = /^(\w+)@(\d+)$/.exec(spec);
  const step = m?.[1] as Step | undefined;
  if (!m || !step || !STEPS.includes(step)) {
    throw new WinnowError(
      'USAGE',
      `WINNOW_FAULT must look like <step>@<slice seq> or fail:<step>, with step one of ${STEPS.join(', ')}, ` +
        `got "${spec}"`,
    );
  }
  return { kind: 'kill', step, seq: Number(m[2]) };
}

/** The error of WINNOW_FAULT=fail:<step> (its code names it in /readyz). */
export class InjectedFault extends WinnowError {
  constructor(step: Step, seq: number) {
    super('INJECTED_FAULT', `injected fault: slice ${seq} fails at ${step} (WINNOW_FAULT)`, { retryable: true });
  }
}

export function faultHooks(
  spec: string | undefined,
  kill: () => void = () => process.kill(process.pid, 'SIGKILL'),
): StepHooks {
  const fault = parseFault(spec);
  if (!fault) return {};
  if (fault.kind === 'fail') {
    const step = fault.step;
    const fail = (s: { seq: number }): void => {
      throw new InjectedFault(step, s.seq);
    };
    return { [step]: fail };
  }
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
