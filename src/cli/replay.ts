import { WinnowError } from '../errors.ts';
import { replayBound, Replayer } from '../operations/replay.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, requireCommandLease, withOnePipeline } from './context.ts';

const help = `Usage: winnow replay --config FILE [--pipeline NAME] (--from-timestamp T | --from-offsets P:O,...) [--to T|P:O,...] [--json]

Re-processes offsets the pipeline has already processed, through the same
windowed anti-join: a replay adds a row only for a key that is not represented
within the window, so it is safe over data already in the final table. Ranges
still in staging are re-read from there; where staging no longer holds them, the
Kafka engine is rewound (queue detached, consumer group offsets set, queue
attached) and the replay waits until the messages are staged again.
A running daemon holds the pipeline: send replays to it instead
(POST /api/v1/pipelines/:name/replay with the bearer token).

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME        the pipeline (required when the file has several)
  --from-timestamp T     ISO-8601 (2026-11-27T10:00:00Z) or ms since the epoch; the
                         offsets come from Kafka (or staging when Kafka is unreachable)
  --from-offsets LIST    PARTITION:OFFSET, or TOPIC/PARTITION:OFFSET for several topics
  --to BOUND             upper bound in the same form (default: everything processed)
  --json                 print the result as JSON`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  'from-timestamp': { type: 'string' },
  'from-offsets': { type: 'string' },
  to: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const replayCommand: Command = {
  name: 'replay',
  summary: 're-process a range from an offset or a timestamp (adds nothing already represented)',
  help,
  async run(args) {
    const { values } = parseFlags('replay', args, flags, false);
    const ts = values['from-timestamp'];
    const offs = values['from-offsets'];
    if ((ts === undefined) === (offs === undefined)) throw new WinnowError('USAGE', 'replay: give exactly one of --from-timestamp and --from-offsets', { hint: 'see: winnow replay --help' });
    const from = offs !== undefined ? replayBound(offs, 'offsets') : replayBound(ts ?? '', 'timestamp');
    const to = values.to === undefined ? undefined : replayBound(values.to, from.kind);
    return withOnePipeline('replay', values, async (target, admins) => {
      const { pipeline, db } = target;
      await requireCommandLease(target, 'send the replay to it: POST /api/v1/pipelines/:name/replay, or stop it first');
      const admin = await admins.adminIfReachable(pipeline);
      const progress = (line: string): void => {
        process.stderr.write(`replay ${pipeline.name}: ${line}\n`);
      };
      const result = await new Replayer(db, pipeline, admin, progress).run({ from, ...(to ? { to } : {}), reason: 'cli' });
      if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else {
        process.stdout.write(
          `replayed ${result.rowsIn} rows of pipeline ${pipeline.name} in ${result.chunks} chunks: ${result.inserted} inserted, ${result.duplicates} already represented` +
            (result.rewound.length ? `; rewound the Kafka engine on ${result.rewound.map((r) => `${r.topic}/${r.partition}:${r.offset}`).join(', ')}` : '') +
            '\n',
        );
      }
      return 0;
    });
  },
};
