/**
 * Lease protocol 2 (src/slicing/lease.ts) on the real ClickHouse, with a
 * clock of the test's own: one owner per term; a release hands the term to
 * its next generation, which a waiting daemon wins; a claim of an old
 * generation (a claimer that read before the release) is deduplicated away
 * and changes no owner; claims of daemons older than the protocol are refused
 * for a migrated pipeline, and one made before the migration keeps new
 * daemons standing by until its epoch is over.
 * Invariant: one writer per pipeline at any time.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { tokenInsert } from '../../src/clickhouse/token-dedup.ts';
import { LEASES_TABLE } from '../../src/provisioning/objects.ts';
import { Lease } from '../../src/slicing/lease.ts';
import { createTopic, freshDatabase, servers, uniqueName } from '../support/helpers.ts';
import { runCli } from '../support/cli.ts';

const EPOCH = 4_000;
const TERM = EPOCH / 2;

describe('lease protocol 2', () => {
  let db: Db;
  let database: string;
  const name = uniqueName('lease');

  beforeAll(async () => {
    const s = servers();
    database = (await freshDatabase('winnow_lease')).name;
    const topic = uniqueName('lease');
    await createTopic(topic, 1);
    const yaml = `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns: [{ name: event_id, type: UUID }]
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${database}, table: events }
`;
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-lease-')), 'winnow.yaml');
    await writeFile(file, yaml);
    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code, up.stderr).toBe(0);
    db = connect({ url: s.clickhouseUrl });
  });

  afterAll(async () => {
    await db?.close();
  });

  const table = (): string => `\`${database}\`.${LEASES_TABLE}`;
  const lease = (owner: string, clock: { now: number }): Lease =>
    new Lease(db, database, name, { epochMs: EPOCH, now: () => clock.now, owner });
  const rows = (term: number) =>
    db.rows<{ gen: number; kind: string; owner: string }>(
      `SELECT gen, kind, owner FROM ${table()} WHERE pipeline = {p:String} AND epoch = {t:UInt64} ` +
        'ORDER BY gen, kind, owner',
      { p: name, t: term },
    );

  it('one owner per term; a release passes it to the next generation; a stale claim changes nothing', async () => {
    // Far in the future of every other test's terms, at the start of a term.
    const h = Math.floor(Date.now() / TERM) + 1_000_000;
    // A fifth of an epoch into a term, the holder claims the next one.
    const into = EPOCH / 5 + 10;
    const clock = { now: h * TERM + into };
    const a = lease('A', clock);
    const b = lease('B', clock);

    expect(await a.acquire()).toEqual({
      held: true,
      heldUntil: (h + 2) * TERM,
      holder: 'A',
      holderUntil: (h + 2) * TERM,
    });
    expect(await b.acquire()).toEqual({ held: false, heldUntil: 0, holder: 'A', holderUntil: (h + 2) * TERM });
    // A command yields to a daemon, too.
    expect(await lease('cli:C', clock).acquire(false)).toMatchObject({ held: false, holder: 'A' });

    expect(await a.release('test')).toBe(2);
    expect(await a.release('again')).toBe(0);
    expect(await b.acquire()).toEqual({
      held: true,
      heldUntil: (h + 2) * TERM,
      holder: 'B',
      holderUntil: (h + 2) * TERM,
    });
    // A claimer that read generation 0 before the release: its claim carries the token of A's claim.
    await db.command(
      `INSERT INTO ${table()} (pipeline, epoch, gen, kind, owner, protocol) ` +
        `VALUES ({p:String}, {t:UInt64}, 0, 'claim', 'late', 2)`,
      { p: name, t: h },
      tokenInsert(`lease:${name}:${h}:0`),
    );
    expect(await rows(h)).toEqual([
      { gen: 0, kind: 'claim', owner: 'A' },
      { gen: 0, kind: 'release', owner: 'A' },
      { gen: 1, kind: 'claim', owner: 'B' },
    ]);
    expect(await a.acquire()).toMatchObject({ held: false, holder: 'B' });
    expect(await lease('late', clock).acquire()).toMatchObject({ held: false, holder: 'B' });

    // B renews into the next term; A still stands by.
    clock.now = (h + 1) * TERM + 10;
    expect(await b.acquire()).toMatchObject({ held: true, heldUntil: (h + 2) * TERM }); // not yet
    clock.now = (h + 1) * TERM + into;
    expect(await b.acquire()).toMatchObject({ held: true, heldUntil: (h + 3) * TERM });
    expect(await a.acquire()).toMatchObject({ held: false, holder: 'B' });
    // B dies (no release): its terms run out within one epoch, less a fifth, then A takes over.
    clock.now = (h + 3) * TERM + into;
    expect(await a.acquire()).toMatchObject({ held: true, holder: 'A', heldUntil: (h + 5) * TERM });
  });

  it('refuses the claims of older daemons, and stands by while one made before the migration lasts', async () => {
    const e = Math.floor(Date.now() / EPOCH) + 2_000_000;
    const old = `INSERT INTO ${table()} (pipeline, epoch, owner) VALUES ({p:String}, {e:UInt64}, 'vm:16038:c9847ce0')`;
    await expect(db.command(old, { p: name, e })).rejects.toThrow(/VIOLATED_CONSTRAINT/);

    // A claim written before migration 0009 (constraint not there yet).
    const constraint = `lease_protocol_${name}`;
    await db.command(`ALTER TABLE ${table()} DROP CONSTRAINT ${constraint}`);
    try {
      await db.command(old, { p: name, e }, tokenInsert(`lease:${name}:${e}`));
    } finally {
      await db.command(
        `ALTER TABLE ${table()} ADD CONSTRAINT ${constraint} CHECK protocol >= 2 OR pipeline != '${name}'`,
      );
    }
    const clock = { now: e * EPOCH + 100 };
    const s = await lease('new', clock).acquire();
    expect(s).toMatchObject({ held: false, holderUntil: (e + 1) * EPOCH });
    expect(s.holder).toContain('vm:16038:c9847ce0');
    clock.now = (e + 1) * EPOCH + 10;
    expect(await lease('new', clock).acquire()).toMatchObject({ held: true, holder: 'new' });
  });
});
