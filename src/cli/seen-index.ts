import type { Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import { rebuildGrantNeeds, rebuildSeenIndex, type RebuildProgress } from '../operations/index-rebuild.ts';
import { grantFix, missingGrants } from '../provisioning/preflight.ts';
import { isCommandHolder, Lease } from '../slicing/lease.ts';
import { parseFlags, type Command } from './command.ts';
import { CONFIG_FLAG_HELP, withOnePipeline, type Target } from './context.ts';
import { formatBytes } from './progress.ts';

const help = `Usage: winnow index rebuild [--config FILE] [--pipeline NAME] [--no-compact]

Rebuilds the seen-key index of a dedup.index: rocksdb pipeline
(winnow_<p>_seen_kv, local to one ClickHouse server) from its record, the seen
keys: after a move to a new server, a failover to another replica, or a lost
or corrupt RocksDB directory. The index is emptied, then every seen key still
inside its TTL gets one entry (its latest kept time and that row's slice),
written partition by partition of the seen keys (their time buckets), oldest
first, so a key kept in several keeps its latest; within a partition in
passes over ranges of the key hash of about 10M keys each, so ClickHouse's
memory does not grow with the seen keys, and each pass reads only its
partition, so every seen key is read once. A partition's passes are written
in RocksDB's key order; ClickHouse writes such bulk files without a bloom
filter, and the partitions' files overlap, so the index is then compacted
(OPTIMIZE TABLE: the files merged and rewritten with the server's filter;
lookups of absent keys, most of a slice's, got 3-4x faster in the
benchmark). Then the verification of winnow check's seen-key index part
runs over every seen key, in passes over ranges of the key hash.
It holds the pipeline's lease throughout: refused while a daemon runs the
pipeline (stop it first; slices must not write the index meanwhile). A
dedup.index: scan pipeline has no index: refused (exit code 2).
Prints each pass on stderr (partition, entries written, rate, ETA) and a one-line
summary on stdout. Exit code 0 when every seen key has its entry, 4 when the
verification finds one missing, 1 on an error.

Options:
  ${CONFIG_FLAG_HELP}
  --pipeline NAME  the pipeline (needed when the file has several)
  --no-compact     leave the rebuilt files as written (no OPTIMIZE)
Grants: those of run, plus TRUNCATE and OPTIMIZE on the index table (OPTIMIZE
not with --no-compact); checked first: without them it is refused in one line
naming the GRANT, before anything changes.`;

const flags = {
  config: { type: 'string' },
  pipeline: { type: 'string' },
  'no-compact': { type: 'boolean', default: false },
} as const;

/**
 * Refuses, in one line and before the index is emptied, a sink.user without TRUNCATE (or, compacting,
 * OPTIMIZE) on the index table: otherwise the rebuild would fail at that statement. A server that cannot
 * CHECK GRANT is not asked (its refusal comes at the statement).
 */
async function checkRebuildGrants(db: Db, p: PipelineConfig, compact: boolean): Promise<void> {
  const missing = await missingGrants(db, rebuildGrantNeeds(p, compact));
  if (!Array.isArray(missing) || missing.length === 0) return;
  throw new WinnowError(
    'CONFIG_INVALID',
    `pipeline ${p.name}: sink.user ${JSON.stringify(p.sink.user)} lacks ${missing.map((m) => `${m.privilege} ON ${m.on}`).join(', ')}, needed for index rebuild (nothing was changed)`,
    {
      hint: `${grantFix(missing, p.sink.user)}${missing.some((m) => m.privilege === 'OPTIMIZE') ? '; or, without OPTIMIZE, --no-compact' : ''}; see README "Grants"`,
    },
  );
}

/** The pipeline's lease for a one-off command, claimed ahead every second like a daemon's, until released. */
async function holdLease(target: Target): Promise<{ held(): boolean; release(): Promise<void> }> {
  const { pipeline, db } = target;
  const lease = new Lease(db, pipeline.sink.database, pipeline.name, { role: 'command' });
  const first = await lease.acquire(true);
  if (!first.held) {
    const who = first.holder ?? '?';
    throw new WinnowError(
      'CONFLICT',
      `pipeline ${pipeline.name} is run by ${first.holder && isCommandHolder(first.holder) ? 'another command' : 'a daemon'} (${who})`,
      { hint: 'stop it first: slices must not write the index during a rebuild' },
    );
  }
  let lost = false;
  let until = first.heldUntil;
  const timer = setInterval(() => {
    lease.acquire(true).then(
      (s) => {
        if (s.held) until = s.heldUntil;
        else lost = true;
      },
      () => undefined, // a failed claim: the next one decides (the held terms run on meanwhile)
    );
  }, 1000);
  return {
    held: () => !lost && until > Date.now(),
    release: async () => {
      clearInterval(timer);
      await lease.release('index rebuild finished').catch(() => undefined);
    },
  };
}

function progressLine(name: string, x: RebuildProgress): string {
  const s = x.elapsedMs / 1000;
  const eta = x.pass < x.passes ? `, ETA ${Math.round((s / x.pass) * (x.passes - x.pass))} s` : '';
  if (x.phase === 'compact') return `winnow index rebuild: ${name}: compacting the index (OPTIMIZE TABLE)\n`;
  if (x.phase === 'write') {
    const rate = s > 0 ? Math.round(x.entries / s) : 0;
    const part = x.partition
      ? ` (partition ${x.partition.id}, ${x.partition.range}/${x.partition.ranges}, from ${x.partition.from})`
      : '';
    return `winnow index rebuild: ${name}: pass ${x.pass}/${x.passes}${part}: ${x.entries} entries written, ${rate} entries/s, ${s.toFixed(1)} s${eta}\n`;
  }
  return `winnow index rebuild: ${name}: verify ${x.pass}/${x.passes}: ${x.entries} missing so far, ${s.toFixed(1)} s${eta}\n`;
}

export const indexCommand: Command = {
  name: 'index',
  summary: 'rebuild the seen-key index (dedup.index rocksdb) from the seen keys (index rebuild)',
  help,
  async run(args) {
    const { values, positionals } = parseFlags('index', args, flags);
    const [action, ...extra] = positionals;
    if (action !== 'rebuild' || extra.length > 0) {
      throw new WinnowError(
        'USAGE',
        `index: expected "rebuild", got "${[action ?? '', ...extra].join(' ').trim() || '(nothing)'}"`,
        {
          hint: 'see: winnow index --help',
        },
      );
    }
    return withOnePipeline('index rebuild', values, async (target) => {
      const { pipeline } = target;
      if (pipeline.dedup.index !== 'rocksdb') {
        throw new WinnowError(
          'USAGE',
          `pipeline ${pipeline.name} has no seen-key index to rebuild (dedup.index is ${pipeline.dedup.index}; only rocksdb has one)`,
        );
      }
      await checkRebuildGrants(target.db, pipeline, !values['no-compact']);
      const lease = await holdLease(target);
      try {
        const r = await rebuildSeenIndex(target.db, pipeline, {
          keepLease: () => lease.held(),
          compact: !values['no-compact'],
          progress: (x) => process.stderr.write(progressLine(pipeline.name, x)),
        });
        const entries = r.entries ?? r.written;
        const perEntry = r.bytes > 0 && entries > 0 ? `, ${(r.bytes / entries).toFixed(1)} bytes/entry` : '';
        process.stdout.write(
          `pipeline ${pipeline.name}: seen-key index rebuilt: ${entries} entries (${r.written} written) from ${r.seenRows} seen-key rows in ${r.passes} passes over ${r.partitions} partitions, ${r.writeSeconds.toFixed(1)} s${r.compactSeconds > 0 ? ` + ${r.compactSeconds.toFixed(1)} s compaction` : ''}` +
            `${r.bytes > 0 ? `, ${formatBytes(r.bytes)} on disk${perEntry}` : ''}, ClickHouse peak ${formatBytes(r.peakMemoryBytes)} a pass; ` +
            `verified: ${r.missing} seen keys without their entry (${r.verifySeconds.toFixed(1)} s)\n`,
        );
        return r.missing === 0 ? 0 : 4;
      } finally {
        await lease.release();
      }
    });
  },
};
