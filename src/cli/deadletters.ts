import { WinnowError } from '../errors.ts';
import { listDeadLetters, replayDeadLetters } from '../operations/deadletters.ts';
import { parseOffsets, Replayer } from '../operations/replay.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, requireCommandLease, withOnePipeline } from './context.ts';

const help = `Usage: winnow deadletters list   --config FILE [--pipeline NAME] [--limit N] [--json]
       winnow deadletters replay --config FILE [--pipeline NAME] (--all | --offsets P:O,...) [--json]

Dead letters are messages that could not become a row (malformed JSON, invalid
UTF-8, a missing or null key, a value of the wrong type, ...), kept with the
reason and their Kafka coordinates in winnow_<name>_errors.

  list     the newest dead letters with their reasons (default 20)
  replay   after fixing the cause (e.g. a column made optional), run the chosen
           dead letters through the pipeline's current validation again: those
           that pass are staged with their original coordinates, deduplicated and
           removed from the dead letters; the rest stay, with their reason

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME   the pipeline (required when the file has several)
  --limit N         list: how many (1-10000, default 20)
  --all             replay: every dead letter
  --offsets LIST    replay: PARTITION:OFFSET or TOPIC/PARTITION:OFFSET, comma-separated
  --json            print JSON`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  limit: { type: 'string' },
  all: { type: 'boolean', default: false },
  offsets: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function printable(raw: string, max = 120): string {
  const s = JSON.stringify(raw);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

export const deadlettersCommand: Command = {
  name: 'deadletters',
  summary: 'list dead letters, or re-ingest them once their cause is fixed',
  help,
  async run(args) {
    const { values, positionals } = parseFlags('deadletters', args, flags);
    const [action, ...extra] = positionals;
    if (extra.length > 0 || (action !== 'list' && action !== 'replay')) {
      throw new WinnowError('USAGE', 'deadletters: say list or replay', { hint: 'see: winnow deadletters --help' });
    }
    return withOnePipeline('deadletters', values, async (target, admins) => {
      const { pipeline, db } = target;
      if (action === 'list') {
        if (values.all || values.offsets) throw new WinnowError('USAGE', 'deadletters list: --all and --offsets go with replay');
        const limit = Number(values.limit ?? '20');
        if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new WinnowError('USAGE', `deadletters list: --limit must be an integer 1-10000, got "${values.limit}"`);
        const { total, letters } = await listDeadLetters(db, pipeline, limit);
        if (values.json) process.stdout.write(JSON.stringify({ total, letters }, null, 2) + '\n');
        else {
          process.stdout.write(`pipeline ${pipeline.name}: ${total} dead letters${total > letters.length ? ` (newest ${letters.length} shown)` : ''}\n`);
          for (const l of letters) process.stdout.write(`  ${l.topic}/${l.partition}:${l.offset}  ${l.error}\n      ${printable(l.raw)}\n`);
        }
        return 0;
      }
      if (values.limit !== undefined) throw new WinnowError('USAGE', 'deadletters replay: --limit goes with list');
      if (values.all === (values.offsets !== undefined)) throw new WinnowError('USAGE', 'deadletters replay: give --all or --offsets');
      await requireCommandLease(target, 'stop it, replay the dead letters, start it again');
      const admin = await admins.adminIfReachable(pipeline);
      const replayer = new Replayer(db, pipeline, admin, (line) => process.stderr.write(`deadletters ${pipeline.name}: ${line}\n`));
      const r = await replayDeadLetters(db, pipeline, values.all ? 'all' : parseOffsets(values.offsets ?? ''), replayer);
      if (values.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        process.stdout.write(
          `pipeline ${pipeline.name}: ${r.selected} dead letters selected, ${r.reingested} re-ingested (${r.replay?.inserted ?? 0} new rows now, ${r.waitingForSlice} wait for the next slice of \`winnow run\`), ${r.stillFailing} still failing\n`,
        );
        for (const x of r.reasons) process.stdout.write(`  ${x.count} × ${x.error}\n`);
      }
      return 0;
    });
  },
};
