/**
 * I5 (a re-run slice adds nothing) must not depend on how ClickHouse happens
 * to cut the slice SELECT's rows into chunks.
 *
 * ClickHouse names a token-deduplicated block after the token and the numbers
 * of the source chunks the SELECT handed over. The same slice insert, re-run
 * with the same token, whose SELECT emits its rows in a different number of
 * chunks, therefore gets new block ids and is written a second time. Under
 * load the chunking varies with timing (a probe saw resumed slices doubled);
 * here a different `max_block_size` on the re-run's session makes it vary
 * deterministically. Before the fix (unsorted SELECT, block size not pinned)
 * the re-run doubled every kept row of the slice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import type { PipelineConfig } from '../../src/config/index.ts';
import type { ObjectNames } from '../../src/provisioning/objects.ts';
import { countKept, dedupInsert, sliceInsertSql, type SliceRange } from '../../src/slicing/slice.ts';
import { tokenInsertSelect } from '../../src/clickhouse/token-dedup.ts';
import { servers } from '../support/helpers.ts';
import { handFedPipeline } from '../support/hand-fed.ts';

const ROWS = 20_000;

describe('a re-run slice whose SELECT is chunked differently', () => {
  let db: string;
  let p: PipelineConfig;
  let n: ObjectNames;
  let client: Db;
  const opened: Db[] = [];

  /** A session as a user's profile, or timing under load, might shape it. */
  const session = (settings: Record<string, string>): Db => {
    const d = connect({ url: servers().clickhouseUrl, settings });
    opened.push(d);
    return d;
  };
  const counts = async (): Promise<{ final: number; distinct: number; seen: number; seenGroups: number }> => {
    const [r] = await client.rows<{ f: string; u: string; s: string; g: string }>(
      `SELECT (SELECT count() FROM ${db}.events) AS f, (SELECT uniqExact(event_id) FROM ${db}.events) AS u,
              (SELECT count() FROM ${db}.${n.seen}) AS s, (SELECT uniqExact(event_id, __t, __slice) FROM ${db}.${n.seen}) AS g`,
    );
    return { final: Number(r?.f), distinct: Number(r?.u), seen: Number(r?.s), seenGroups: Number(r?.g) };
  };

  beforeAll(async () => {
    ({ db, p, n, client } = await handFedPipeline('chunks', ['a'], '1h', { maxSliceRows: ROWS }));
    // Four parts, keys repeating across them (about one row in ten is a duplicate).
    for (let part = 0; part < 4; part++) {
      await client.command(
        `INSERT INTO ${db}.${n.staging} (event_id, msg, payload, __t, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
         SELECT toUUID(concat('00000000-0000-4000-8000-', leftPad(toString(intHash32(number) % ${ROWS * 0.9}), 12, '0'))),
                number, concat('payload ', toString(number)), now64(3), 'a', 0, number, NULL, now64(3)
         FROM numbers(${(part * ROWS) / 4}, ${ROWS / 4})`,
      );
    }
  });

  afterAll(async () => {
    for (const d of opened) await d.close();
    await client?.close();
  });

  it('keeps one copy whatever block size and threads the re-run runs with', async () => {
    const ranges: SliceRange[] = [{ topic: 'a', partition: 0, fromOffset: 0, toOffset: ROWS - 1 }];
    const slice = `${p.name}-1-chunks`;
    await dedupInsert(client, p, slice, ranges);
    const first = await counts();
    expect(first.final).toBeGreaterThan(ROWS / 2);
    expect(first).toEqual({
      final: first.distinct,
      distinct: first.distinct,
      seen: first.final,
      seenGroups: first.final,
    });
    // One block per target partition: block ids are the token and the block number, so a
    // re-run must cut the same blocks; one block each makes that hold by construction.
    const parts = await client.rows<{ table: string; parts: string; partitions: string }>(
      `SELECT table, count() AS parts, uniqExact(partition_id) AS partitions FROM system.parts
       WHERE database = {db:String} AND table IN ('events', {seen:String}) AND active GROUP BY table ORDER BY table`,
      { db, seen: n.seen },
    );
    expect(parts.map((r) => Number(r.parts))).toEqual(parts.map((r) => Number(r.partitions)));
    expect(parts).toHaveLength(2);

    for (const settings of [
      { max_block_size: '1000' } as Record<string, string>,
      { max_block_size: '777', max_threads: '1' },
      { max_block_size: '100000', max_threads: '8' },
    ]) {
      await dedupInsert(session(settings), p, slice, ranges);
      expect(await counts(), `re-run with ${JSON.stringify(settings)}`).toEqual(first);
    }
    // Background merges between a crash and the resume change the part layout the SELECT reads.
    await client.command(`OPTIMIZE TABLE ${db}.${n.staging} FINAL`);
    await dedupInsert(session({ max_block_size: '3000' }), p, slice, ranges);
    expect(await counts()).toEqual(first);
    expect(await countKept(client, p, slice, ranges)).toBe(first.final);
  });

  it('is a SELECT ClickHouse itself judges stable, so it deduplicates on servers where a token alone is not enough', async () => {
    // Without a token, force_enable accepts only a SELECT the server deems stable (ORDER BY ALL, one
    // stream): what every 26.2+ server without ClickHouse PR #99206 requires even with a token.
    const ranges: SliceRange[] = [{ topic: 'a', partition: 0, fromOffset: 0, toOffset: 99 }];
    const ins = sliceInsertSql(p, `${p.name}-2-stable`, ranges);
    const { insert_deduplication_token: _token, ...untokened } = tokenInsertSelect('unused');
    const unsorted = ins.sql.replace(/\nORDER BY ALL\s*$/, '');
    expect(unsorted).not.toBe(ins.sql);
    await expect(
      client.command(unsorted, ins.params, { ...untokened, enable_materialized_cte: 1 }),
    ).rejects.toMatchObject({ chCode: 764 });
    await client.command(ins.sql, ins.params, { ...untokened, enable_materialized_cte: 1 });
  });
});
