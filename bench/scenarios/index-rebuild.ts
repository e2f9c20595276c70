/**
 * The state phase's seen-key index (dedup.index rocksdb), built as `winnow
 * index rebuild` builds it: emptied and written again from the seen keys in
 * passes over ranges of the key hash, in RocksDB's key order. Timed (rebuild,
 * verification), with ClickHouse's peak memory of a pass, the index's bytes per
 * entry and SST files; a 100k-key lookup (10% present) before and after the
 * rebuild's OPTIMIZE (RocksDB CompactRange: does the rebuilt index need it?),
 * and the verification, in the order `winnow index rebuild` runs them.
 */
import type { Ctx } from '../context.ts';
import { fmtInt, median } from '../context.ts';
import type { PipelineConfig } from '../../src/config/schema.ts';
import { compactIndexSql, passCount, rebuildSeenIndex, verifySeenIndex } from '../../src/operations/index-rebuild.ts';
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
  /** after the rebuild's OPTIMIZE TABLE */
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

export async function rebuildIndex(
  ctx: Ctx,
  rig: StateRig,
  p: PipelineConfig,
  key: (n: string) => string,
): Promise<IndexRebuild> {
  const dir = await dirOf(rig);
  // The rebuild's passes alone; the compaction and the verification are timed apart below, in its order.
  const r = await rebuildSeenIndex(rig.db, p, { compact: false, verify: false });
  const files = dir ? await sstFiles(dir) : { n: 0, bytes: 0 };
  const out: IndexRebuild = {
    keys: rig.seen,
    entries: r.written,
    passes: r.passes,
    rebuildSeconds: r.writeSeconds,
    verifySeconds: 0,
    missing: 0,
    bytesPerEntry: (files.bytes || r.bytes) / Math.max(1, r.written),
    peakMemoryBytes: r.peakMemoryBytes,
    sstFiles: files.n,
    lookupMs: await lookupMs(rig, key),
  };
  ctx.log(
    `state: index rebuilt in ${r.writeSeconds.toFixed(1)} s (${fmtInt(r.written / r.writeSeconds)} keys/s, ${out.bytesPerEntry.toFixed(1)} bytes/entry, CH peak memory ${(r.peakMemoryBytes / 2 ** 20).toFixed(0)} MiB; ${fmtInt(r.written)} entries in ${r.passes} passes over ${r.partitions} partitions reading ${fmtInt(r.readRows)} seen-key rows, ${files.n} SST files); 100k lookups ${out.lookupMs.toFixed(0)} ms`,
  );
  const t0 = performance.now();
  await rig.db.command(compactIndexSql(p));
  const seconds = (performance.now() - t0) / 1000;
  const after = dir ? await sstFiles(dir) : { n: 0, bytes: 0 };
  out.optimized = {
    seconds,
    sstFiles: after.n,
    lookupMs: await lookupMs(rig, key),
    bytesPerEntry: after.bytes / Math.max(1, r.written),
  };
  ctx.log(
    `state: rebuilt index compacted in ${seconds.toFixed(1)} s: ${after.n} SST files, ${out.optimized.bytesPerEntry.toFixed(1)} bytes/entry, 100k lookups ${out.optimized.lookupMs.toFixed(0)} ms (before: ${out.lookupMs.toFixed(0)} ms)`,
  );
  const v0 = performance.now();
  out.missing = await verifySeenIndex(rig.db, p, passCount(r.seenRows));
  out.verifySeconds = (performance.now() - v0) / 1000;
  ctx.log(`state: rebuilt index verified in ${out.verifySeconds.toFixed(1)} s: ${out.missing} missing`);
  if (out.missing > 0) throw new Error(`state: the rebuilt index misses ${out.missing} entries`);
  return out;
}
