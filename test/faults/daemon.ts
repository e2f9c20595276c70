/** `winnow run` as a child process of a fault scenario, and the registry that makes sure none outlives its test file. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN } from '../support/cli.ts';

export interface LogLine {
  msg: string;
  level: string;
  [k: string]: unknown;
}

/** Every daemon this test file started: a failed scenario must not leave one running. */
const started = new Set<DaemonProc>();

/** `winnow run` as a child process, with its JSON log lines and its exit. */
export class DaemonProc {
  logs = '';
  api: string | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private constructor(
    readonly child: ChildProcess,
    /** the daemon's output, also written here (beside its config), so a failed scenario leaves it behind */
    readonly logFile: string,
  ) {
    const file = createWriteStream(logFile, { flags: 'a' });
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        started.delete(this);
        resolve({ code, signal });
      }),
    );
    started.add(this);
    const take = (d: Buffer): void => {
      this.logs += d.toString();
      file.write(d);
    };
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.on('close', () => file.end());
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Starts `winnow run --port 0` (output also in `daemon-<pid>.log` beside the config); resolves once its API listens. */
  static async start(configFile: string, env: Record<string, string> = {}): Promise<DaemonProc> {
    const base = { ...process.env };
    delete base['WINNOW_FAULT'];
    const child = spawn(process.execPath, [BIN, 'run', '--config', configFile, '--port', '0'], {
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const d = new DaemonProc(child, path.join(path.dirname(configFile), `daemon-${child.pid ?? 'unknown'}.log`));
    const deadline = Date.now() + 60_000;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    void d.exited.then((e) => (exit = e));
    while (!d.api) {
      const m = /"api":"(http:\/\/[^"]+)"/.exec(d.logs);
      if (m?.[1]) d.api = m[1];
      else if (exit) throw new Error(`winnow run exited (${JSON.stringify(exit)}) before serving its API:\n${d.logs}`);
      else if (Date.now() > deadline) throw new Error(`winnow run did not serve its API within 60 s:\n${d.logs}`);
      else await sleep(50);
    }
    return d;
  }

  lines(): LogLine[] {
    return this.logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as LogLine;
        } catch {
          return undefined;
        }
      })
      .filter((l): l is LogLine => l !== undefined);
  }

  count(msg: string): number {
    return this.lines().filter((l) => l.msg.startsWith(msg)).length;
  }

  slices(): LogLine[] {
    return this.lines().filter((l) => l.msg === 'slice');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, and the exit code (0 when the daemon stopped cleanly). */
  async stop(): Promise<number | null> {
    this.kill('SIGTERM');
    const e = await this.exited;
    return e.code;
  }
}

/** SIGKILLs every daemon of this test file that still runs, and waits until they have exited. */
export async function killDaemons(): Promise<void> {
  const left = [...started];
  for (const d of left) d.kill('SIGKILL');
  await Promise.all(left.map((d) => d.exited));
}
