/**
 * Why one file over 300 lines: four transient-fault scenarios sharing one pair of servers (starting a pair per file costs a minute).
 *
 * Transient faults: nothing dies, but requests fail and messages come twice.
 *
 * 7: transient failures between the daemon and ClickHouse. The daemon's
 * sink.url points at a TCP proxy that resets (RST) a third of the slice
 * inserts and a seeded random 10% of all other requests (checkpoints, lease
 * claims, reads): half before ClickHouse sees them, half after ClickHouse
 * executed them (the insert, checkpoint or lease claim happened, but the
 * daemon sees a connection reset). Migrations, stats and the checks use
 * ClickHouse directly. The daemon must log the failures, retry, and end
 * exactly where a clean run ends: a re-run slice insert adds nothing (its
 * token, and the seen keys).
 * Invariants: I5 idempotence of re-run slices, I4, and through the final
 * check I1-I3.
 *
 * 8: forced consumer rebalances that re-deliver messages, while a producer
 * streams and the daemon runs:
 *   - a kafkajs consumer joins the engine's consumer group (assigner 'range',
 *     as librdkafka speaks it), takes partitions away from ClickHouse, sets
 *     their committed offsets back by 150 (what a consumer that polled but
 *     never committed leaves behind) and leaves: ClickHouse gets the
 *     partitions back and reads those 150 messages again (once per phase);
 *   - DETACH TABLE <queue> then ATTACH TABLE: ClickHouse's consumer goes and
 *     comes back; what it had polled but not committed comes again. (Seen on
 *     ClickHouse 26.7: the detached consumer does not leave the group; the
 *     group waits for its session to time out, about 45 s, before the
 *     re-attached consumer gets partitions.)
 * Staging then holds duplicated coordinates, some below the slices' watermark,
 * some in the pending range; the final table must not change.
 * Invariants: I4 (re-delivered coordinates counted once), I5 (a re-delivered
 * range adds no row), and through the final check I1-I3.
 *
 * 10: the final table is at its parts limit for a while (parts_to_throw_insert
 * = 1: TOO_MANY_PARTS, retryable) while the stream runs; the slice insert fails
 * in the final table's view, after the seen keys may have landed. The daemon
 * must retry with back-off, log the failure once, and, once the table accepts
 * rows again, end exactly where a clean run ends.
 * Invariants: I2 completeness, I4 (the stats count only rows that are in the
 * final table), I5, and through the final check I1-I3.
 *
 * 11: the final table refuses the rows of three keys (a CHECK constraint:
 * VIOLATED_CONSTRAINT, not retryable). Each of their messages is isolated by
 * splitting slices, dead-lettered with the error and logged once; the pipeline
 * never stops, and everything else is exact as if those keys had never come.
 * Invariants: I1-I4 on the rest, nothing lost (the refused are dead letters).
 *
 * All run at once, each with its own pipeline on this file's servers.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventIdOf } from '../support/oracle.ts';
import { breakingProxy, groupOffsets, Pipeline, produce, Servers, waitFor } from './harness.ts';

/** librdkafka's 'range' assignment, so a kafkajs consumer can join the group ClickHouse's engine is in. */
const rangeAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'range',
  version: 0,
  assign({ members, topics }) {
    const ids = members.map((m) => m.memberId).sort();
    const subscribed = new Map(
      members.map((m) => [m.memberId, AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.topics ?? []]),
    );
    const out = new Map<string, Record<string, number[]>>(ids.map((id) => [id, {}]));
    for (const topic of topics) {
      const parts = cluster
        .findTopicPartitionMetadata(topic)
        .map((p) => p.partitionId)
        .sort((a, b) => a - b);
      const subs = ids.filter((id) => subscribed.get(id)?.includes(topic));
      let next = 0;
      subs.forEach((id, i) => {
        const n = Math.floor(parts.length / subs.length) + (i < parts.length % subs.length ? 1 : 0);
        out.get(id)![topic] = parts.slice(next, next + n);
        next += n;
      });
    }
    return Promise.resolve(
      ids.map((memberId) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: out.get(memberId) ?? {},
          userData: Buffer.alloc(0),
        }),
      })),
    );
  },
  protocol({ topics }) {
    return {
      name: 'range',
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    };
  },
});

describe.concurrent('fault: transient failures', () => {
  let servers: Servers;

  beforeAll(async () => {
    servers = await Servers.start('transient');
  });

  afterAll(async () => {
    await servers?.stop();
  });

  it('a third of slice inserts and 10% of other requests reset by a proxy; the daemon retries; exact', async ({
    onTestFinished,
  }) => {
    const proxy = await breakingProxy(
      { host: servers.clickhouse.host, port: servers.ports.chHttp },
      7007,
      0.1,
      path.join(servers.dir, 'transient-proxy.log'),
    );
    onTestFinished(() => proxy.close());
    const p = new Pipeline(servers, { label: 'transient', maxSliceRows: 250, daemonSinkUrl: proxy.url });
    await p.create();
    const phases = p.generate(7007, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();

    const daemon = await p.startDaemon();
    await produce(kafka, phase1, { batch: 200, pauseMs: 300 });
    await p.waitQuiescent(phase1);
    await produce(kafka, phase2, { batch: 100, pauseMs: 300 });
    await p.waitQuiescent([...phase1, ...phase2]);

    const failures = daemon.lines().filter((l) => l.msg.startsWith('slice failed'));
    const resumed = daemon.slices().filter((l) => l['resumed'] === true);
    const broken = (k: string): number => proxy.counts.broken[k] ?? 0;
    expect(
      broken('slice insert before'),
      `slice inserts reset before ClickHouse saw them; ${JSON.stringify(proxy.counts)}`,
    ).toBeGreaterThan(0);
    expect(
      broken('slice insert after'),
      `slice inserts that ran but looked failed; ${JSON.stringify(proxy.counts)}`,
    ).toBeGreaterThan(0);
    expect(failures.length, 'the daemon logged its failed ticks').toBeGreaterThan(0);
    expect(daemon.running).toBe(true);
    const c = proxy.counts;
    await p.verify(
      'transient-insert',
      phases,
      `proxy reset ${c.resetBefore + c.resetAfter} of ${c.requests} requests (${c.resetBefore} before, ${c.resetAfter} after ClickHouse ran them: ` +
        `${Object.entries(c.broken)
          .sort()
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')}); ` +
        `the daemon logged ${failures.length} failed ticks, resumed ${resumed.length} planned slices, ${daemon.slices().length} slices in all`,
    );
    expect(await daemon.stop()).toBe(0);
    await p.close();
  });

  it('an intruding group member that rewinds, and detach/attach of the queue, while streaming; exact', async () => {
    const p = new Pipeline(servers, { label: 'rebalance', maxSliceRows: 300 });
    await p.create();
    const phases = p.generate(8008, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    const queue = p.table(`winnow_${p.name}_queue`);
    const admin = kafka.admin();
    await admin.connect();
    const done: string[] = [];

    /** Waits until the engine's group is 'Stable' with `members` members, none of them in `gone`; returns their ids. */
    const settled = async (members: number, gone: string[] = []): Promise<string[]> => {
      const g = await waitFor(
        async () => {
          const d = (await admin.describeGroups([p.consumerGroup])).groups[0];
          return { state: d?.state, ids: d?.members.map((m) => m.memberId) ?? [] };
        },
        (d) => d.state === 'Stable' && d.ids.length === members && !d.ids.some((id) => gone.includes(id)),
        90_000,
        `consumer group ${p.consumerGroup} to be stable with ${members} members`,
      );
      return g.ids;
    };

    /** A kafkajs member joins the group, sets the committed offsets of the partitions it got back by `rewind`, and leaves. */
    const intruder = async (rewind: number, holdMs: number): Promise<void> => {
      // Every partition has committed offsets to set back.
      await waitFor(
        () => groupOffsets(admin, p.consumerGroup, p.topics),
        (o) => o.size === 4 && [...o.values()].every((v) => v > rewind),
        90_000,
        'committed offsets on every partition',
      );
      await settled(1);
      const c = kafka.consumer({
        groupId: p.consumerGroup,
        partitionAssigners: [rangeAssigner],
        sessionTimeout: 10_000,
        rebalanceTimeout: 20_000,
      });
      let assigned: Record<string, number[]> = {};
      c.on(c.events.GROUP_JOIN, (e) => {
        assigned = e.payload.memberAssignment;
      });
      await c.connect();
      await c.subscribe({ topics: p.topics });
      await c.run({ autoCommit: false, eachMessage: () => Promise.resolve() });
      await settled(2);
      const committed = await groupOffsets(admin, p.consumerGroup, p.topics);
      const back = Object.entries(assigned).flatMap(([topic, parts]) =>
        parts
          .map((partition) => ({ topic, partition, offset: committed.get(`${topic}/${partition}`) ?? -1 }))
          .filter((o) => o.offset > 0)
          .map((o) => ({ ...o, offset: String(Math.max(0, o.offset - rewind)) })),
      );
      await c.commitOffsets(back);
      await sleep(holdMs);
      await c.disconnect();
      const n = Object.values(assigned).reduce((a, parts) => a + parts.length, 0);
      done.push(`kafkajs member took ${n} partitions, set ${back.length} back by ${rewind} and left`);
    };

    const detachAttach = async (): Promise<void> => {
      const before = await settled(1);
      await p.command(`DETACH TABLE ${queue}`);
      await sleep(500);
      await p.command(`ATTACH TABLE ${queue}`);
      const t = Date.now();
      await settled(1, before);
      done.push(
        `detach+attach (the re-attached consumer had the partitions after ${((Date.now() - t) / 1000).toFixed(1)} s)`,
      );
    };

    /** Disruptions while `stream` runs (from 1 s into it, one after the other). */
    const disrupt = async (stream: Promise<unknown>, kinds: (() => Promise<void>)[]): Promise<void> => {
      for (const k of kinds) {
        await sleep(1_000);
        await k();
      }
      await stream;
    };

    const daemon = await p.startDaemon();
    await disrupt(produce(kafka, phase1, { batch: 100, pauseMs: 500 }), [
      () => intruder(150, 2_000),
      () => detachAttach(),
    ]);
    await p.waitQuiescent(phase1);
    await disrupt(produce(kafka, phase2, { batch: 50, pauseMs: 500 }), [() => intruder(150, 2_000)]);
    await p.waitQuiescent([...phase1, ...phase2]);
    await admin.disconnect();

    const [dups] = await p.query<{ rows: string; coords: string }>(
      `SELECT count() AS rows, uniqExact(_topic, _partition, _offset) AS coords FROM ${p.table(`winnow_${p.name}_staging`)}`,
    );
    const redelivered = Number(dups?.rows) - Number(dups?.coords);
    expect(redelivered, 'staging holds re-delivered coordinates').toBeGreaterThan(0);
    await p.verify('rebalance', phases, done.join(', '));
    expect(await daemon.stop()).toBe(0);
    await p.close();
  });

  it('the final table is at its parts limit for a while; the daemon retries with back-off; exact', async () => {
    const p = new Pipeline(servers, { label: 'finalfull', maxSliceRows: 300 });
    await p.create();
    const phases = p.generate(10010, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    const final = p.table('users_dedup');

    const daemon = await p.startDaemon();
    // Every insert into the final table fails with TOO_MANY_PARTS (retryable) once it has a part;
    // the seen keys, written side by side, may land: the re-run must still write the final rows.
    await p.command(`ALTER TABLE ${final} MODIFY SETTING parts_to_throw_insert = 1`);
    await produce(kafka, phase1, { batch: 100, pauseMs: 300 });
    await waitFor(
      async () => Promise.resolve(daemon.count('slice failed')),
      (n) => n >= 1,
      90_000,
      'the daemon to fail on the full final table',
    );
    await sleep(5_000); // a few retries, with back-off
    const failed = daemon.lines().filter((l) => l.msg.startsWith('slice failed'));
    expect(failed, 'a failure that goes on is logged once').toHaveLength(1);
    expect(String(failed[0]?.['error'])).toContain('TOO_MANY_PARTS');
    await p.command(`ALTER TABLE ${final} RESET SETTING parts_to_throw_insert`);
    await p.waitQuiescent(phase1);
    await produce(kafka, phase2, { batch: 100, pauseMs: 300 });
    await p.waitQuiescent([...phase1, ...phase2]);
    expect(daemon.count('slices succeed again')).toBe(1);
    await p.verify(
      'final-table-full',
      phases,
      'the final table refused slice inserts (too many parts), then accepted rows again',
    );
    expect(await daemon.stop()).toBe(0);
    await p.close();
  });

  it('the final table refuses the rows of some keys: every message of theirs is dead-lettered once, the rest is exact', async () => {
    const p = new Pipeline(servers, { label: 'finalrefuses', maxSliceRows: 300 });
    await p.create();
    const phases = p.generate(10010, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    const final = p.table('users_dedup');
    // Three keys that occur more than once (a re-send or a retry), so every copy must be refused too.
    const counts = new Map<string, number>();
    for (const m of phases.flat()) {
      const id = eventIdOf(m);
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const refusedKeys = new Set(
      [...counts.entries()]
        .filter(([, c]) => c > 1)
        .map(([k]) => k)
        .slice(0, 3),
    );
    expect(refusedKeys.size).toBe(3);
    await p.command(
      `ALTER TABLE ${final} ADD CONSTRAINT refuse_some CHECK toString(event_id) NOT IN (${[...refusedKeys].map((k) => `'${k}'`).join(', ')})`,
    );

    const daemon = await p.startDaemon();
    // Isolating a refused message costs a few failed inserts and seen-key deletes (binary search):
    // on a loaded machine that takes minutes, hence the longer waits.
    await produce(kafka, phase1, { batch: 100, pauseMs: 300 });
    await p.waitQuiescent(phase1, 330_000);
    await produce(kafka, phase2, { batch: 100, pauseMs: 300 });
    await p.waitQuiescent([...phase1, ...phase2], 330_000);
    const refusedLines = daemon.lines().filter((l) => l.msg.startsWith('message refused by the final table'));
    const refusedMessages = phases.flat().filter((m) => refusedKeys.has(eventIdOf(m) ?? '')).length;
    expect(refusedLines, 'one log line per refused message').toHaveLength(refusedMessages);
    expect(String(refusedLines[0]?.['reason'])).toContain('VIOLATED_CONSTRAINT');
    expect(daemon.count('slice failed'), 'a refused row does not fail the pipeline').toBe(0);
    await p.verify(
      'final-refuses-rows',
      phases,
      `the final table refused ${refusedMessages} messages of ${refusedKeys.size} keys`,
      refusedKeys,
    );
    expect(await daemon.stop()).toBe(0);
    await p.close();
  }, 900_000);
});
