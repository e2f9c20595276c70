/**
 * Progress of what a command waits on, on stderr: one line that updates in
 * place on a terminal, or plain lines at most every `intervalMs` otherwise
 * (logs and CI keep a few lines, not thousands; a wait shorter than 5 s
 * prints none). Tasks are keyed; each shows
 * its text, bytes of total and percent when known, and how long it has run.
 */

export interface TaskStatus {
  text: string;
  bytes?: number;
  total?: number;
}

export interface ProgressOptions {
  tty: boolean;
  write: (s: string) => void;
  now?: () => number;
  /** least time between two plain lines (not a terminal); default 2000 ms */
  intervalMs?: number;
  /** plain lines: none before the first task has run this long (a quick start says nothing); default 5000 ms */
  firstAfterMs?: number;
}

export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** `downloading x 12.3 MB of 47.7 MB (25%), 4s`; bytes alone when the total is unknown. */
export function formatTask(s: TaskStatus, elapsedMs: number): string {
  const parts = [s.text];
  if (s.bytes !== undefined) {
    parts.push(
      s.total !== undefined && s.total > 0
        ? `${formatBytes(s.bytes)} of ${formatBytes(s.total)} (${Math.min(100, Math.floor((100 * s.bytes) / s.total))}%)`
        : formatBytes(s.bytes),
    );
  }
  return `${parts.join(' ')}, ${Math.floor(elapsedMs / 1000)}s`;
}

export class ProgressLine {
  private readonly tasks = new Map<string, { status: TaskStatus; since: number }>();
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly firstAfterMs: number;
  /** plain lines: when the last was printed (or when it may first be, less an interval) */
  private lastPlainAt: number | undefined;
  /** what the terminal line shows now ('' when nothing) */
  private shown = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ProgressOptions) {
    this.now = o.now ?? Date.now;
    this.intervalMs = o.intervalMs ?? 2000;
    this.firstAfterMs = o.firstAfterMs ?? 5000;
  }

  /** The line of every running task. */
  line(): string {
    const t = this.now();
    return [...this.tasks.values()].map((x) => formatTask(x.status, t - x.since)).join(' | ');
  }

  update(key: string, status: TaskStatus): void {
    const cur = this.tasks.get(key);
    this.tasks.set(key, { status, since: cur?.since ?? this.now() });
    this.render();
  }

  /** Ends a task; `message` is printed as a line of its own (it stays). */
  done(key: string, message?: string): void {
    this.tasks.delete(key);
    if (message !== undefined) this.say(message);
    else this.render();
  }

  /** A line of its own, above the progress line; `to` writes it elsewhere (stdout) than the progress. */
  say(message: string, to: (s: string) => void = this.o.write): void {
    this.clear();
    to(`${message}\n`);
    this.render();
  }

  /** Re-renders every second (elapsed times move on while nothing reports). */
  start(): void {
    this.timer ??= setInterval(() => this.render(), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private clear(): void {
    if (this.o.tty && this.shown !== '') this.o.write('\r\x1b[K');
    this.shown = '';
  }

  private render(): void {
    const text = this.line();
    if (this.o.tty) {
      if (text === this.shown) return;
      this.o.write(`\r\x1b[K${text}`);
      this.shown = text;
      return;
    }
    if (text === '') return;
    const t = this.now();
    this.lastPlainAt ??= t + this.firstAfterMs - this.intervalMs;
    if (t - this.lastPlainAt < this.intervalMs) return;
    this.lastPlainAt = t;
    this.o.write(`${text}\n`);
  }
}
