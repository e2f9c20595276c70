/**
 * Faults of the controller process.
 *
 * 1-4: the daemon is killed (SIGKILL, by WINNOW_FAULT) at each step of slice
 * 2: before its insert, with the insert request in flight, after the insert
 * but before the 'committed' checkpoint, and after the checkpoint. A restarted
 * daemon (which first stands by until the dead one's lease runs out) must
 * finish the slice, and the stream, exactly as without the crash.
 * Invariants: I6 crash safety, and through the final check I1-I4; I5 (a
 * re-run slice adds nothing) for the steps that leave a planned slice behind.
 *
 * 9: two daemons started at once on the same pipeline, both running for the
 * whole stream. The lease (src/slicing/lease.ts) must let exactly one process
 * slices while the other stands by; then the active one is SIGKILLed and the
 * standby must take over (within about two lease epochs) and process the
 * messages that arrive after the kill.
 * Invariants: one writer per pipeline (never doubled), I6, and through the
 * final checks I1-I4.
 *
 * The five scenarios run at once, each with its own pipeline on this file's
 * servers, so their lease waits overlap.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { laterPhase, Pipeline, produce, Servers } from './harness.ts';

const STEPS = ['beforeInsert', 'duringInsert', 'afterInsert', 'afterCommit'] as const;
type Step = (typeof STEPS)[number];

interface SliceRow {
  seq: string;
  status: 'planned' | 'committed';
  slice_id: string;
  inserted: string;
}

describe.concurrent('fault: the daemon is SIGKILLed', () => {
  let servers: Servers;

  beforeAll(async () => {
    servers = await Servers.start('daemon-kill');
  });

  afterAll(async () => {
    await servers?.stop();
  });

  const scenario = async (step: Step, seed: number): Promise<void> => {
    const p = new Pipeline(servers, { label: `kill_${step.toLowerCase()}`, maxSliceRows: 300 });
    await p.create();
    const phases = p.generate(seed, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    await p.killedAt(step, 2, phase1);

    // The state the crash left behind.
    const slicesTable = p.table('winnow_slices');
    const slices = await p.query<SliceRow>(
      `SELECT seq, status, slice_id, inserted FROM ${slicesTable} WHERE pipeline = '${p.name}' ORDER BY seq, status`,
    );
    const bySeq = (seq: number, status: string): SliceRow[] =>
      slices.filter((s) => Number(s.seq) === seq && s.status === status);
    expect(bySeq(1, 'committed')).toHaveLength(1);
    expect(bySeq(2, 'planned')).toHaveLength(1);
    const slice2 = bySeq(2, 'planned')[0]!.slice_id;
    expect(bySeq(2, 'committed')).toHaveLength(step === 'afterCommit' ? 1 : 0);
    expect(slices.filter((s) => Number(s.seq) > 2)).toHaveLength(0);
    if (step === 'duringInsert') await sleep(1_000); // let an orphaned insert finish on the server
    const countSeen = async (): Promise<number> => {
      const [r] = await p.query<{ n: string }>(
        `SELECT count() AS n FROM ${p.table(`winnow_${p.name}_seen`)} WHERE __slice = '${slice2}'`,
      );
      return Number(r?.n ?? 0);
    };
    const [fin] = await p.query<{ n: string }>(`SELECT count() AS n FROM ${p.table('users_dedup')}`);
    const seen2 = await countSeen();
    const inserted1 = Number(bySeq(1, 'committed')[0]!.inserted);
    if (step === 'beforeInsert') expect(seen2).toBe(0);
    else if (step !== 'duringInsert') expect(seen2).toBeGreaterThan(0);
    expect(Number(fin?.n), 'final rows after the crash = rows of slices 1 and (if its insert ran) 2').toBe(
      inserted1 + seen2,
    );
    const landed =
      step === 'duringInsert' ? (seen2 > 0 ? 'the orphaned insert landed' : 'the orphaned insert did not land') : '';

    // Restart without the fault: it stands by while the dead daemon's lease lasts, then resumes.
    const restartedAt = Date.now();
    const daemon = await p.startDaemon();
    await p.waitQuiescent(phase1, 150_000);
    const takeover = daemon.lines().find((l) => l.msg.startsWith('processing'));
    expect(takeover, daemon.logs).toBeDefined();
    expect(daemon.count('standing by'), "the restarted daemon waits for the dead one's lease").toBeGreaterThan(0);
    const firstSlice = daemon.slices()[0];
    if (step === 'afterCommit') {
      expect(firstSlice).toMatchObject({ seq: 3, resumed: false });
    } else {
      expect(firstSlice).toMatchObject({ seq: 2, resumed: true, slice: slice2 });
    }
    const after = await p.query<SliceRow>(
      `SELECT seq, status, slice_id, inserted FROM ${slicesTable} WHERE pipeline = '${p.name}' AND seq = 2 AND status = 'committed'`,
    );
    expect(after.map((s) => s.slice_id)).toEqual([slice2]);
    if (step !== 'beforeInsert' && seen2 > 0) {
      // The insert had landed before the crash; the re-run added nothing and the checkpoint counts the first run's rows.
      expect(await countSeen()).toBe(seen2);
      expect(Number(after[0]!.inserted)).toBe(seen2);
    }

    // Then phase 2 on the recovered pipeline.
    await produce(kafka, phase2);
    await p.waitQuiescent([...phase1, ...phase2]);
    const doubleCommits = await p.query<{ seq: string }>(
      `SELECT seq FROM ${slicesTable} WHERE pipeline = '${p.name}' AND status = 'committed' GROUP BY seq HAVING count() > 1`,
    );
    expect(doubleCommits).toEqual([]);
    const takeoverS = ((Date.parse(String(takeover!['time'])) - restartedAt) / 1000).toFixed(1);
    await p.verify(
      `daemon-kill-${step}`,
      phases,
      `killed at slice 2 (${slice2}), ${landed ? `${landed}, ` : ''}restart took over after ${takeoverS} s, ` +
        `${step === 'afterCommit' ? 'went on with slice 3' : 'resumed slice 2 with the same token'}`,
    );
    expect(await daemon.stop()).toBe(0);
    await p.close();
  };

  STEPS.forEach((step, i) => {
    it(`SIGKILL ${step} of slice 2, restart, exact`, () => scenario(step, 4100 + i));
  });

  it('one processes, one stands by; SIGKILL the active one and the standby takes over; exact both times', async () => {
    const p = new Pipeline(servers, { label: 'twodaemons', maxSliceRows: 300 });
    await p.create();
    const phases = p.generate(9009, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();

    const daemons = await Promise.all([p.startDaemon(), p.startDaemon()]);
    const [a, b] = daemons;
    await produce(kafka, phase1, { batch: 100, pauseMs: 300 });
    await p.waitQuiescent(phase1);
    await produce(kafka, phase2, { batch: 100, pauseMs: 300 });
    await p.waitQuiescent([...phase1, ...phase2]);

    // Exactly one processed; the other stood by the whole time and sliced nothing.
    const processing = daemons.filter((d) => d.count('processing') > 0);
    expect(processing, `daemon logs:\n--- a\n${a.logs}\n--- b\n${b.logs}`).toHaveLength(1);
    const active = processing[0]!;
    const standby = active === a ? b : a;
    expect(active.count('processing')).toBe(1);
    expect(standby.count('standing by')).toBeGreaterThan(0);
    expect(standby.slices()).toHaveLength(0);
    const slicesTable = p.table('winnow_slices');
    const committed = await p.query<{ seq: string }>(
      `SELECT seq FROM ${slicesTable} WHERE pipeline = '${p.name}' AND status = 'committed' ORDER BY seq`,
    );
    expect(active.slices().map((l) => l['seq'])).toEqual(committed.map((c) => Number(c.seq)));
    await p.verify(
      'two-daemons',
      phases,
      `pid ${active.pid} processed all ${active.slices().length} slices, pid ${standby.pid} stood by (${standby.count('standing by')} 'standing by' lines, 0 slices)`,
    );

    // The active one dies; new messages arrive; the standby takes over.
    active.kill('SIGKILL');
    expect((await active.exited).signal).toBe('SIGKILL');
    const killedAt = Date.now();
    const phase3 = laterPhase(p, 9010, 500, phases);
    const all = [...phases, phase3];
    await produce(kafka, phase3, { batch: 100, pauseMs: 200 });
    await p.waitQuiescent(all.flat(), 120_000);
    const takeover = standby.lines().find((l) => l.msg.startsWith('processing'));
    expect(takeover, standby.logs).toBeDefined();
    expect(standby.slices().length).toBeGreaterThan(0);
    const doubleCommits = await p.query<{ seq: string }>(
      `SELECT seq FROM ${slicesTable} WHERE pipeline = '${p.name}' AND status = 'committed' GROUP BY seq HAVING count() > 1`,
    );
    expect(doubleCommits).toEqual([]);
    await p.verify(
      'two-daemons-takeover',
      all,
      `active pid ${active.pid} SIGKILLed, standby pid ${standby.pid} took over after ` +
        `${((Date.parse(String(takeover!['time'])) - killedAt) / 1000).toFixed(1)} s and processed ${standby.slices().length} slices of ${phase3.length} new messages`,
    );
    expect(await standby.stop()).toBe(0);
    await p.close();
  });
});
