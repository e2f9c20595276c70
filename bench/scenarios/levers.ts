/**
 * Layouts for the seen keys, compared on the one query whose cost grows with
 * the state: "which keys of this slice were seen within the window". Not
 * winnow's code path; it shows which layout to build next (--only levers).
 */
import type { Ctx } from '../context.ts';
import { fmtInt, median } from '../context.ts';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ROCKSDB_TUNED_TABLES } from '../servers.ts';

export interface Layout {
  name: string;
  fillSeconds: number;
  lookupMsMedian: number;
  readRows: number;
  memory: number;
  bytes: number;
  found: number;
  /** active parts after the fill (a probe is per part) */
  parts: number;
  /** bytes of the table's data directory (EmbeddedRocksDB: SST files, filters, WAL) */
  diskBytes?: number;
  /** growth of the server's resident memory from before the create to after the lookups */
  rssGrowth?: number;
  /** EmbeddedRocksDB: lookups the bloom filter answered (system.rocksdb, during the timed lookups) */
  bloomUseful?: number;
}

export interface LeversResult {
  seenKeys: number;
  sliceKeys: number;
  layouts: Layout[];
}

const key = (k: string): string =>
  `reinterpretAsUUID(concat(reinterpretAsString(sipHash64(1, ${k})), reinterpretAsString(sipHash64(1, ${k}, 1))))`;

interface Variant {
  name: string;
  create: string;
  fill: string;
  /** skipped above this many keys (memory) */
  maxKeys?: number;
  /** run after the fill, untimed (compaction) */
  after?: string;
  lookup: string;
  /** more ways to ask the same question of the same table (each its own row) */
  more?: { name: string; lookup: string }[];
}

function variants(d: string, n: number, windowMs: number): Variant[] {
  const t = `now64(3) - toIntervalMillisecond(rand() % ${Math.floor(windowMs * 0.9)} + 60000)`;
  const recent = `__t > now64(3) - toIntervalMillisecond(${windowMs})`;
  const mergeTree = (g: number): Variant => ({
    name: `MergeTree index_granularity=${g}`,
    create: `CREATE TABLE ${d}.seen_g${g} (event_id UUID, __t DateTime64(3, 'UTC'), __slice String) ENGINE = MergeTree
      PARTITION BY toStartOfInterval(__t, INTERVAL 3600 SECOND) ORDER BY event_id SETTINGS index_granularity = ${g}`,
    fill: `INSERT INTO ${d}.seen_g${g} SELECT ${key('number')}, ${t}, 'prefill' FROM numbers(${n})`,
    lookup: `SELECT count() FROM ${d}.seen_g${g} WHERE event_id IN (SELECT event_id FROM ${d}.slice) AND ${recent}`,
  });
  // Ordered by the key hash (what a slice probes), small granules and compression blocks, so a
  // probe reads one small granule; the IN set is analysed against the primary index.
  const byHash = (g: number): Variant => ({
    name: `MergeTree ORDER BY __h, index_granularity=${g}`,
    create: `CREATE TABLE ${d}.seen_h${g} (event_id UUID, __t DateTime64(3, 'UTC'), __slice LowCardinality(String),
      __h UInt64 MATERIALIZED sipHash64(event_id)) ENGINE = MergeTree
      PARTITION BY toStartOfInterval(__t, INTERVAL 3600 SECOND) ORDER BY __h
      SETTINGS index_granularity = ${g}, min_compress_block_size = ${g * 8}, max_compress_block_size = ${g * 64}`,
    fill: `INSERT INTO ${d}.seen_h${g} (event_id, __t, __slice) SELECT ${key('number')}, ${t}, 'prefill' FROM numbers(${n})`,
    lookup: `SELECT count() FROM ${d}.seen_h${g} PREWHERE __h IN (SELECT sipHash64(event_id) FROM ${d}.slice)
      WHERE event_id IN (SELECT event_id FROM ${d}.slice) AND ${recent} SETTINGS use_index_for_in_with_subqueries = 1`,
  });
  function rocksTuned(table: string, what: string, settings: string, compact: boolean): Variant {
    const v: Variant = {
      name: `EmbeddedRocksDB, bloom filter + 256 MB block cache, ${what}`,
      create: `CREATE TABLE ${d}.${table} (event_id UUID, __t DateTime64(3, 'UTC')) ENGINE = EmbeddedRocksDB PRIMARY KEY event_id${settings}`,
      fill: `INSERT INTO ${d}.${table} SELECT ${key('number')}, ${t} FROM numbers(${n})`,
      lookup: `SELECT count() FROM ${d}.${table} WHERE event_id IN (SELECT event_id FROM ${d}.slice) AND ${recent}`,
      more: [
        {
          // The slice streams into the table's getByKeys: one MultiGet per block, no key set built.
          name: 'direct join',
          lookup: `SELECT count() FROM ${d}.slice AS s INNER JOIN ${d}.${table} AS r ON s.event_id = r.event_id
            WHERE r.__t > now64(3) - toIntervalMillisecond(${windowMs}) SETTINGS join_algorithm = 'direct'`,
        },
      ],
    };
    if (compact) v.after = `OPTIMIZE TABLE ${d}.${table}`;
    return v;
  }
  return [
    mergeTree(8192),
    mergeTree(1024),
    mergeTree(256),
    mergeTree(64),
    byHash(1024),
    byHash(256),
    byHash(64),
    {
      name: 'EmbeddedRocksDB (key -> __t)',
      create: `CREATE TABLE ${d}.seen_rocks (event_id UUID, __t DateTime64(3, 'UTC')) ENGINE = EmbeddedRocksDB PRIMARY KEY event_id`,
      fill: `INSERT INTO ${d}.seen_rocks SELECT ${key('number')}, ${t} FROM numbers(${n})`,
      lookup: `SELECT count() FROM ${d}.seen_rocks WHERE event_id IN (SELECT event_id FROM ${d}.slice) AND ${recent}`,
    },
    {
      name: 'EmbeddedRocksDB, compacted',
      create: `CREATE TABLE ${d}.seen_rocksc (event_id UUID, __t DateTime64(3, 'UTC')) ENGINE = EmbeddedRocksDB PRIMARY KEY event_id`,
      fill: `INSERT INTO ${d}.seen_rocksc SELECT ${key('number')}, ${t} FROM numbers(${n})`,
      after: `OPTIMIZE TABLE ${d}.seen_rocksc`,
      lookup: `SELECT count() FROM ${d}.seen_rocksc WHERE event_id IN (SELECT event_id FROM ${d}.slice) AND ${recent}`,
    },
    // Options from the server config by table name (bench/servers.ts). A bulk insert writes its
    // SST files without a filter; the compaction (OPTIMIZE) rewrites them with one.
    rocksTuned(ROCKSDB_TUNED_TABLES[0], 'compacted', '', true),
    rocksTuned(ROCKSDB_TUNED_TABLES[1], 'as bulk-filled', '', false),
    // Row inserts go through the memtable; its flushes and compactions write filtered files.
    rocksTuned(ROCKSDB_TUNED_TABLES[2], 'row inserts, not compacted', ' SETTINGS optimize_for_bulk_insert = 0', false),
    {
      name: 'Join engine (key -> __t, in memory)',
      maxKeys: 40_000_000,
      create: `CREATE TABLE ${d}.seen_join (event_id UUID, __t DateTime64(3, 'UTC')) ENGINE = Join(ANY, LEFT, event_id) SETTINGS join_any_take_last_row = 1`,
      fill: `INSERT INTO ${d}.seen_join SELECT ${key('number')}, ${t} FROM numbers(${n})`,
      lookup: `SELECT count() FROM ${d}.slice WHERE joinGetOrNull('${d}.seen_join', '__t', event_id) > now64(3) - toIntervalMillisecond(${windowMs})`,
    },
    {
      name: 'Set (keys only, in memory)',
      create: `CREATE TABLE ${d}.seen_set (event_id UUID) ENGINE = Set`,
      fill: `INSERT INTO ${d}.seen_set SELECT ${key('number')} FROM numbers(${n})`,
      lookup: `SELECT count() FROM ${d}.slice WHERE event_id IN ${d}.seen_set`,
    },
  ];
}

export async function seenLayouts(ctx: Ctx): Promise<LeversResult> {
  const { opts, servers } = ctx;
  const db = servers.db();
  const d = 'bench_levers';
  const n = opts.leversSeen;
  const sliceKeys = opts.sliceRows;
  await db.command(`CREATE DATABASE IF NOT EXISTS ${d}`);
  await db.command(`CREATE TABLE ${d}.slice (event_id UUID) ENGINE = MergeTree ORDER BY tuple()`);
  // One in ten slice keys was seen; the rest are new.
  await db.command(
    `INSERT INTO ${d}.slice SELECT if(number % 10 = 0, ${key(`toUInt64(sipHash64(number) % ${n})`)}, generateUUIDv4(number)) FROM numbers(${sliceKeys})`,
  );
  const layouts: Layout[] = [];
  const pick = opts.leversLayouts.map((x) => x.toLowerCase());
  for (const v of variants(d, n, opts.windowMs)) {
    if (pick.length > 0 && !pick.some((p) => v.name.toLowerCase().includes(p))) continue;
    if (v.maxKeys !== undefined && n > v.maxKeys) {
      ctx.log(`levers: ${v.name}: skipped above ${fmtInt(v.maxKeys)} keys (about 90 bytes of RAM per key)`);
      continue;
    }
    const table = /CREATE TABLE (\S+)/.exec(v.create)?.[1] ?? '';
    const name = table.split('.')[1] ?? '';
    const rocks = v.create.includes('EmbeddedRocksDB');
    // Whether the bloom filter answered lookups (0 without a filter policy).
    const bloomUseful = async (): Promise<number> =>
      Number(
        (
          await db.rows<{ v: string }>(
            `SELECT toString(sum(value)) AS v FROM system.rocksdb WHERE database = {d:String} AND table = {t:String} AND name = 'bloom.filter.useful'`,
            { d, t: name },
          )
        )[0]?.v ?? NaN,
      );
    try {
      const rss0 = await rssBytes(servers.clickhouse.pid);
      ctx.log(`levers: ${v.name}: filling ${fmtInt(n)} keys`);
      await db.command(v.create);
      const t0 = performance.now();
      await db.command(v.fill, {}, { max_insert_threads: '2' });
      const fillSeconds = (performance.now() - t0) / 1000;
      if (v.after) await db.command(v.after);
      const size = await db.rows<{ b: string | null; p: string[] }>(
        `SELECT total_bytes AS b, data_paths AS p FROM system.tables WHERE database = {d:String} AND name = {t:String}`,
        { d, t: name },
      );
      const parts = await db.rows<{ n: string }>(
        `SELECT count() AS n FROM system.parts WHERE database = {d:String} AND table = {t:String} AND active`,
        { d, t: name },
      );
      const diskBytes = rocks ? await duBytes(size[0]?.p ?? []) : undefined;
      for (const q of [{ name: v.name, lookup: v.lookup }, ...(v.more ?? [])]) {
        const useful0 = rocks ? await bloomUseful() : 0;
        const runs: { ms: number; readRows: number; memory: number }[] = [];
        for (let i = 0; i < 5; i++) {
          const t1 = performance.now();
          const s = await db.command(`${q.lookup} FORMAT Null`);
          runs.push({ ms: performance.now() - t1, readRows: s.readRows, memory: s.memoryBytes });
        }
        const useful = rocks ? (await bloomUseful()) - useful0 : undefined;
        if (rocks) {
          const stats = await db.rows<{ s: string }>(
            `SELECT arrayStringConcat(groupArray(concat(name, '=', toString(value))), ' ') AS s FROM system.rocksdb
             WHERE database = {d:String} AND table = {t:String} AND value > 0 AND match(name, 'bloom|filter|multiget|block.cache.(hit|miss)')`,
            { d, t: name },
          );
          ctx.log(`levers: ${q.name}: rocksdb statistics ${stats[0]?.s ?? ''}`);
        }
        const found = await db.rows<{ c: string }>(q.lookup.replace('SELECT count()', 'SELECT count() AS c'));
        const rss1 = await rssBytes(servers.clickhouse.pid);
        const l: Layout = {
          name: q.name === v.name ? v.name : `${v.name}, ${q.name}`,
          fillSeconds,
          lookupMsMedian: median(runs.map((r) => r.ms)),
          readRows: median(runs.map((r) => r.readRows)),
          memory: median(runs.map((r) => r.memory)),
          bytes: Number(size[0]?.b ?? NaN),
          found: Number(found[0]?.c ?? 0),
          parts: Number(parts[0]?.n ?? 0),
          ...(diskBytes !== undefined ? { diskBytes } : {}),
          ...(useful !== undefined ? { bloomUseful: useful } : {}),
          rssGrowth: rss1 - rss0,
        };
        layouts.push(l);
        ctx.log(
          `levers: ${l.name}: lookup ${l.lookupMsMedian.toFixed(0)} ms, read ${fmtInt(l.readRows)} rows (${l.parts} parts), found ${fmtInt(l.found)}` +
            (rocks
              ? `, bloom filter useful ${fmtInt(useful ?? NaN)} times in 5 lookups, disk ${((diskBytes ?? NaN) / n).toFixed(1)} bytes/key, server RSS +${fmtInt((rss1 - rss0) / 1e6)} MB`
              : ''),
        );
      }
    } catch (err) {
      ctx.log(`levers: ${v.name} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await db
        .command(`DROP TABLE IF EXISTS ${table} SYNC`)
        .catch((err: unknown) => ctx.log(`levers: drop ${table}: ${String(err)}`));
    }
  }
  return { seenKeys: n, sliceKeys, layouts };
}

/** Resident memory of a process (Linux /proc), NaN where it cannot be read. */
async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? NaN : Number(kb) * 1024;
}

/** Bytes of the files under some directories (a table's data paths). */
async function duBytes(dirs: string[]): Promise<number> {
  let total = 0;
  for (const dir of dirs) {
    const names = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
    for (const f of names) {
      const st = await stat(path.join(dir, f)).catch(() => undefined);
      if (st?.isFile()) total += st.size;
    }
  }
  return total;
}
