/**
 * The state phase's seen-key index (dedup.index rocksdb), built as `winnow
 * index rebuild` builds it: emptied and written again from the seen keys in
 * passes over ranges of the key hash, in RocksDB's key order. Timed (rebuild,
 * verification), with ClickHouse's peak memory of a pass, the index's bytes per
 * entry and SST files; then a 100k-key lookup (10% present) before and after
 * an OPTIMIZE (RocksDB CompactRange), to see whether the rebuilt index needs
 * compacting. The OPTIMIZE runs only with --index-rebuild-optimize.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, median } from '../context.ts';
import type { PipelineConfig } from '../../src/config/schema.ts';
import { rebuildSeenIndex } from '../../src/operations/index-rebuild.ts';
import type { StateRig } from './state.ts';
import { sstFiles } from './index-live.ts';

export interface IndexRebuild {
  keys: number;
  entries: number;
  passes: number;
  rebuildSeconds: number;
  verifySeconds: number;
  missing: number;
  bytesPerEntry: number;
  peakMemoryBytes: number;
  sstFiles: number;
  /** median of 3 lookups of 100k keys (10% present), ms */
  lookupMs: number;
  /** after OPTIMIZE TABLE (--index-rebuild-optimize) */
  optimized?: { seconds: number; sstFiles: number; lookupMs: number; bytesPerEntry: number };
}

async function dirOf(rig: StateRig): Promise<string | undefined> {
  const t = await rig.db.rows<{ p: string[] }>(
    `SELECT data_paths AS p FROM system.tables WHERE database = {d:String} AND name = {t:String}`,
    { d: rig.database, t: rig.names.seenKv },
  );
  return t[0]?.p[0];
}

/** 100k lookups into the index, 10% of them prefilled keys (by `key`, the prefill's key of a number). */
async function lookupMs(rig: StateRig, key: (n: string) => string): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await rig.db.rows(
      `SELECT count() AS n FROM ${rig.database}.${rig.names.seenKv}
       WHERE h IN (SELECT reinterpretAsUInt128(sipHash128(${key(`if(number % 10 = 0, sipHash64(number, ${i}) % ${Math.max(1, rig.seen)}, 1000000000000 + number + ${i} * 100000)`)}))
                   FROM numbers(100000))`,
    );
    runs.push(performance.now() - t0);
  }
  return median(runs);
}

async function bytesOnDisk(rig: StateRig, dir: string | undefined): Promise<number> {
  return dir ? (await sstFiles(dir)).bytes : 0;
}

export async function rebuildIndex(
  ctx: Ctx,
  rig: StateRig,
  p: PipelineConfig,
  key: (n: string) => string,
): Promise<IndexRebuild> {
  const dir = await dirOf(rig);
  const r = await rebuildSeenIndex(rig.db, p);
  const files = dir ? await sstFiles(dir) : { n: 0, bytes: 0 };
  const out: IndexRebuild = {
    keys: rig.seen,
    entries: r.entries,
    passes: r.passes,
    rebuildSeconds: r.writeSeconds,
    verifySeconds: r.verifySeconds,
    missing: r.missing,
    bytesPerEntry: (files.bytes || r.bytes) / Math.max(1, r.entries),
    peakMemoryBytes: r.peakMemoryBytes,
    sstFiles: files.n,
    lookupMs: await lookupMs(rig, key),
  };
  ctx.log(
    `state: index rebuilt in ${r.writeSeconds.toFixed(1)} s (${fmtInt(r.entries / r.writeSeconds)} keys/s, ${out.bytesPerEntry.toFixed(1)} bytes/entry, CH peak memory ${(r.peakMemoryBytes / 2 ** 20).toFixed(0)} MiB; ${fmtInt(r.entries)} entries in ${r.passes} passes, ${files.n} SST files); verified in ${r.verifySeconds.toFixed(1)} s, ${r.missing} missing; 100k lookups ${out.lookupMs.toFixed(0)} ms`,
  );
  if (r.missing > 0) throw new Error(`state: the rebuilt index misses ${r.missing} entries`);
  if (ctx.opts.indexRebuildOptimize) {
    const t0 = performance.now();
    await rig.db.command(`OPTIMIZE TABLE ${rig.database}.${rig.names.seenKv}`);
    const seconds = (performance.now() - t0) / 1000;
    const after = dir ? await sstFiles(dir) : { n: 0 };
    out.optimized = {
      seconds,
      sstFiles: after.n,
      lookupMs: await lookupMs(rig, key),
      bytesPerEntry: (await bytesOnDisk(rig, dir)) / Math.max(1, r.entries),
    };
    ctx.log(
      `state: rebuilt index compacted in ${seconds.toFixed(1)} s: ${after.n} SST files, ${out.optimized.bytesPerEntry.toFixed(1)} bytes/entry, 100k lookups ${out.optimized.lookupMs.toFixed(0)} ms (before: ${out.lookupMs.toFixed(0)} ms)`,
    );
  }
  return out;
}
