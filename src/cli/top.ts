import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration } from '../config/duration.ts';
import { WinnowError } from '../errors.ts';
import { renderFrame, topRow, topSample, type TopSample } from '../operations/top.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, configPath, withPipelines } from './context.ts';

const help = `Usage: winnow top [--config FILE] [--pipeline NAME] [--interval D] [--once]

A live view of every pipeline of the file, refreshed each second: events in/s,
inserted/s and duplicates/s (from the counters' change since the previous
refresh), the duplicate ratio, rows waiting for a slice, Kafka lag, dead
letters, the last slice (age, rows, duration) and health: processing, standby,
failing or starting as the daemon holding the pipeline says (its /readyz, found
from the lease it holds), 'no daemon' when none holds it. The numbers are those
of winnow stats.

q or Ctrl-C quits (and restores the terminal). When stdout is not a terminal,
each refresh is printed as a block below the previous one; q on stdin still quits.

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME  only this pipeline (default: all)
  --interval D     time between refreshes (default 1s)
  --once           print one frame (rates over one interval) and exit`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  interval: { type: 'string', default: '1s' },
  once: { type: 'boolean', default: false },
} as const;

export const topCommand: Command = {
  name: 'top',
  summary: 'live view of the pipelines: rates, duplicates, lag, last slice, health',
  help,
  async run(args) {
    const { values } = parseFlags('top', args, flags, false);
    let intervalMs: number;
    try {
      intervalMs = parseDuration(values.interval);
    } catch {
      throw new WinnowError(
        'USAGE',
        `top: --interval must be a duration such as 1s or 500ms, got "${values.interval}"`,
      );
    }
    if (!(intervalMs >= 100)) throw new WinnowError('USAGE', `top: --interval must be at least 100ms`);
    const file = configPath(values.config);
    return withPipelines(values, async (pipelines, admins) => {
      const sample = (): Promise<TopSample[]> =>
        Promise.all(pipelines.map(({ pipeline, db }) => topSample(db, pipeline, () => admins.offsets(pipeline))));
      const frame = (prev: TopSample[] | undefined, cur: TopSample[]): string => {
        const time = new Date().toISOString().replace('T', ' ').slice(0, 19);
        const notes = cur.filter((s) => s.kafkaError).map((s) => `  ${s.stats.name}: Kafka: ${s.kafkaError}`);
        return renderFrame(
          `winnow top  ${file}  ${time} UTC${values.once ? '' : '  (q quits)'}`,
          cur.map((s, i) => topRow(prev?.[i], s)),
          notes,
        );
      };

      if (values.once) {
        const first = await sample();
        await sleep(intervalMs);
        process.stdout.write(frame(first, await sample()));
        return 0;
      }

      const tty = process.stdout.isTTY === true;
      let quit = false;
      let wake: (() => void) | undefined;
      const stop = (): void => {
        quit = true;
        wake?.();
      };
      const onKey = (d: Buffer): void => {
        const s = d.toString();
        if (s.includes('q') || s.includes('Q') || s.includes('\x03')) stop();
      };
      const rawStdin = process.stdin.isTTY === true;
      if (rawStdin) process.stdin.setRawMode(true);
      process.stdin.on('data', onKey);
      process.stdin.resume();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // Alternate screen, cursor hidden; both undone however the loop ends.
      if (tty) process.stdout.write('\x1b[?1049h\x1b[?25l');
      try {
        let prev: TopSample[] | undefined;
        while (!quit) {
          const cur = await sample();
          const text = frame(prev, cur);
          process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
          prev = cur;
          if (quit) break;
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, intervalMs).unref();
          });
        }
      } finally {
        if (tty) process.stdout.write('\x1b[?25h\x1b[?1049l');
        process.stdin.off('data', onKey);
        if (rawStdin) process.stdin.setRawMode(false);
        process.stdin.pause();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      return 0;
    });
  },
};
