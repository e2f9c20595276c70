/** Starts and stops the controller under test (daemon-child.ts) and collects what it reports. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PipelineConfig } from '../src/config/index.ts';

export interface ChildSpec {
  url: string;
  pipeline: PipelineConfig;
  insertSettings: Record<string, string>;
  tickMs: number;
}

export interface SliceReport {
  seq: number;
  /** wall clock when the slice was committed */
  at: number;
  rowsIn: number;
  inserted: number;
  duplicates: number;
  /** the whole tick: plan, checkpoints, insert, counts */
  tickMs: number;
  insertMs: number;
  /** ClickHouse memory_usage of the insert (X-ClickHouse-Summary) */
  insertMemory: number;
  insertReadRows: number;
  byKind: Record<string, number>;
}

export type ChildMessage =
  | { kind: 'slice'; slice: SliceReport }
  | { kind: 'rss'; rss: number }
  | { kind: 'error'; error: string }
  | { kind: 'done'; maxRss: number; cpuSeconds: number };

export interface DaemonProcess {
  pid: number;
  slices: SliceReport[];
  errors: string[];
  /** rows of committed slices (staged rows turned into final rows or dropped as duplicates) */
  processed(): number;
  peakRss(): number;
  stop(): Promise<{ maxRss: number; cpuSeconds: number }>;
}

const script = fileURLToPath(new URL('./daemon-child.ts', import.meta.url));

export function startDaemon(spec: ChildSpec, onError: (e: string) => void): DaemonProcess {
  const child: ChildProcess = fork(script, [JSON.stringify(spec)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const slices: SliceReport[] = [];
  const errors: string[] = [];
  let processed = 0;
  let peak = 0;
  let done: { maxRss: number; cpuSeconds: number } | undefined;
  child.on('message', (m: ChildMessage) => {
    if (m.kind === 'slice') {
      slices.push(m.slice);
      processed += m.slice.rowsIn;
    } else if (m.kind === 'rss') peak = Math.max(peak, m.rss);
    else if (m.kind === 'error') {
      errors.push(m.error);
      onError(m.error);
    } else done = { maxRss: m.maxRss, cpuSeconds: m.cpuSeconds };
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? -1,
    slices,
    errors,
    processed: () => processed,
    peakRss: () => peak,
    async stop() {
      if (child.connected) child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      return done ?? { maxRss: peak, cpuSeconds: 0 };
    },
  };
}
