/**
 * Faults of a replay run by the daemon (operations/replay-jobs.ts).
 *
 * Before each replay, final rows and their seen keys of 60 keys (each kept
 * once) are deleted, so the replay has rows to add in many of its chunks: a
 * chunk re-run without its token would double them, a chunk skipped would lose
 * them. After the replay the final table must equal the oracle again, and
 * winnow_replays must hold each chunk once (the checker's counts add them up).
 *
 * 1. The daemon dies (WINNOW_FAULT=afterReplayChunk@3) once chunk 3 of the job
 *    is inserted and recorded but before the job says so. A restarted daemon
 *    resumes the job at chunk 3 under the same token: nothing twice.
 * 2. `winnow replay` hands the job to the active one of two daemons and
 *    follows it while new messages stream in (slices run between chunks); the
 *    active daemon is SIGKILLed in the middle of the replay. The standby takes
 *    the pipeline over, resumes the job and finishes it; the command, which
 *    kept following, ends with the replay's result.
 * Invariants: I5 (a re-run chunk adds nothing), I6 (the kill changes nothing),
 * and through the exact check at the end I1-I4; each chunk is recorded once in
 * winnow_replays.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import type { GenMessage } from '../support/oracle.ts';
import { laterPhase, Pipeline, produce, Servers, waitFor, type DaemonProc } from './harness.ts';

interface JobRow {
  job_id: string;
  rev: number;
  state: string;
  holder: string;
  attempt: number;
  chunks_done: number;
  chunks_total: number;
}

describe.concurrent('fault: the daemon is SIGKILLed in the middle of a replay', () => {
  let servers: Servers;

  beforeAll(async () => {
    servers = await Servers.start('replay-kill');
  });

  afterAll(async () => {
    await servers?.stop();
  });

  /** Phases 1 and 2 processed by `daemon`, then 60 keys lost: their final rows and seen keys deleted. */
  const prepare = async (
    p: Pipeline,
    phases: GenMessage[][],
    daemons: () => Promise<DaemonProc[]>,
  ): Promise<DaemonProc[]> => {
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    await produce(kafka, phase1);
    const started = await daemons();
    await p.waitQuiescent(phase1);
    await produce(kafka, phase2);
    await p.waitQuiescent([...phase1, ...phase2]);
    const lost = await p.query<{ id: string }>(
      `SELECT toString(event_id) AS id FROM ${p.table('users_dedup')} GROUP BY event_id HAVING count() = 1
       ORDER BY cityHash64(event_id) LIMIT 60`,
    );
    expect(lost).toHaveLength(60);
    const list = lost.map((r) => `'${r.id}'`).join(', ');
    for (const t of ['users_dedup', `winnow_${p.name}_seen`]) {
      await p.ch.command({
        query: `DELETE FROM ${p.table(t)} WHERE event_id IN (${list})`,
        clickhouse_settings: { mutations_sync: '2' },
      });
    }
    const [n] = await p.query<{ n: string }>(
      `SELECT count() AS n FROM ${p.table('users_dedup')} WHERE event_id IN (${list})`,
    );
    expect(Number(n?.n)).toBe(0);
    return started;
  };

  const jobRow = async (p: Pipeline, id?: string): Promise<JobRow | undefined> => {
    const rows = await p.query<JobRow>(
      `SELECT job_id, rev, toString(state) AS state, holder, attempt, chunks_done, chunks_total
       FROM ${p.table('winnow_replay_jobs')} WHERE pipeline = '${p.name}'${id ? ` AND job_id = '${id}'` : ''}
       ORDER BY rev DESC LIMIT 1`,
    );
    return rows[0];
  };

  /** Each chunk of the job recorded once, and how many rows the replay added. */
  const records = async (p: Pipeline, id: string): Promise<{ rows: number; chunks: number; inserted: number }> => {
    const [r] = await p.query<{ rows: string; chunks: string; inserted: string }>(
      `SELECT count() AS rows, uniqExact(chunk) AS chunks, sum(inserted) AS inserted
       FROM ${p.table('winnow_replays')} WHERE pipeline = '${p.name}' AND replay_id = '${id}'`,
    );
    return { rows: Number(r?.rows), chunks: Number(r?.chunks), inserted: Number(r?.inserted) };
  };

  const secondsSince = (from: number, time: unknown): string => ((Date.parse(String(time)) - from) / 1000).toFixed(1);

  const offsets = (p: Pipeline): string =>
    [0, 1, 2]
      .map((q) => `${p.topics[0]}/${q}:0`)
      .concat(`${p.topics[1]}/0:0`)
      .join(',');

  it('killed after a chunk landed, before the job said so: the restarted daemon resumes it, exact', async () => {
    const p = new Pipeline(servers, { label: 'replay_chunk', maxSliceRows: 100 });
    await p.create();
    const phases = p.generate(5101, 1500);
    const [faulty] = await prepare(p, phases, async () => [
      await p.startDaemon({ WINNOW_FAULT: 'afterReplayChunk@3' }),
    ]);

    const queued = await runCli(
      ['replay', '--config', p.configFile, '--from-offsets', offsets(p), '--no-wait', '--json'],
      {},
      60_000,
    );
    expect(queued.code, queued.stderr).toBe(0);
    const jobId = (JSON.parse(queued.stdout) as { jobId: string }).jobId;
    const exit = await Promise.race([faulty!.exited, sleep(120_000).then(() => undefined)]);
    expect(exit, `the daemon with WINNOW_FAULT=afterReplayChunk@3 did not die:\n${faulty!.logs}`).toEqual({
      code: null,
      signal: 'SIGKILL',
    });

    // The crash left chunk 3 recorded and the job saying 2 chunks done.
    const left = await jobRow(p, jobId);
    expect(left).toMatchObject({ state: 'running', chunks_done: 2 });
    expect(Number(left?.chunks_total)).toBeGreaterThan(20);
    const before = await records(p, jobId);
    expect(before.chunks).toBe(3);
    // Chunk 3 brought lost rows back before the crash; its re-run must add none of them again (its token
    // skips what landed, and its first attempt's seen keys represent them), and record itself once.
    const [third] = await p.query<{ n: string }>(
      `SELECT inserted AS n FROM ${p.table('winnow_replays')} WHERE replay_id = '${jobId}' AND chunk = 3`,
    );
    const inChunk3 = Number(third?.n);
    expect(inChunk3).toBeGreaterThan(0);

    const restartedAt = Date.now();
    const daemon = await p.startDaemon();
    const done = await waitFor(
      () => jobRow(p, jobId),
      (j) => j?.state === 'done' || j?.state === 'failed',
      180_000,
      `job ${jobId}`,
    );
    expect(done).toMatchObject({ state: 'done', attempt: 2 });
    expect(daemon.count('replay job resumed')).toBe(1);
    const after = await records(p, jobId);
    expect(after).toEqual({ rows: Number(done?.chunks_total), chunks: Number(done?.chunks_total), inserted: 60 });
    const resumedAt = daemon.lines().find((l) => l.msg === 'replay job resumed');
    await p.verify(
      'replay-kill-after-chunk',
      phases,
      `60 keys lost and replayed; killed after chunk 3 of ${String(done?.chunks_total)} landed, ` +
        `restart resumed it after ${secondsSince(restartedAt, resumedAt?.['time'])} s, ` +
        `chunk 3 (${inChunk3} rows back) re-run under its token`,
    );
    expect(await daemon.stop()).toBe(0);
    await p.close();
  });

  it('the active daemon dies mid-replay while events stream; the standby finishes what the CLI follows', async () => {
    const p = new Pipeline(servers, { label: 'replay_takeover', maxSliceRows: 50 });
    await p.create();
    const phases = p.generate(5202, 1500);
    const daemons = await prepare(p, phases, () => Promise.all([p.startDaemon(), p.startDaemon()]));
    const active = daemons.find((d) => d.count('processing') > 0);
    const standby = daemons.find((d) => d !== active);
    expect(active, daemons.map((d) => d.logs).join('\n---\n')).toBeDefined();

    // The command follows the job; new messages arrive meanwhile and are sliced between its chunks.
    const cli = runCli(['replay', '--config', p.configFile, '--from-offsets', offsets(p)], {}, 300_000);
    const phase3 = laterPhase(p, 5203, 500, phases);
    const streaming = produce(servers.kafkaClient(), phase3, { batch: 50, pauseMs: 200 });
    const running = await waitFor(
      () => jobRow(p),
      (j) => j !== undefined && Number(j.chunks_done) >= 4,
      120_000,
      'the replay to be under way',
    );
    active!.kill('SIGKILL');
    expect((await active!.exited).signal).toBe('SIGKILL');
    const killedAt = Date.now();

    const result = await cli;
    expect(result.code, result.stderr).toBe(0);
    await streaming;
    const all = [...phases, phase3];
    await p.waitQuiescent(all.flat());

    const done = await jobRow(p, running!.job_id);
    expect(done).toMatchObject({ state: 'done', attempt: 2 });
    expect(Number(running!.chunks_done)).toBeLessThan(Number(done!.chunks_total));
    expect(standby!.count('replay job resumed')).toBe(1);
    expect(standby!.slices().length, 'the standby sliced phase 3').toBeGreaterThan(0);
    expect(done!.holder).not.toBe(running!.holder);
    expect(result.stdout).toMatch(/replayed \d+ rows of pipeline \S+ in \d+ chunks: 60 inserted/);
    expect(result.stderr).toContain('handed to the daemon holding the pipeline');
    expect(result.stderr).toContain('(100%)');
    const recs = await records(p, running!.job_id);
    expect(recs).toEqual({ rows: Number(done!.chunks_total), chunks: Number(done!.chunks_total), inserted: 60 });
    const resumed = standby!.lines().find((l) => l.msg === 'replay job resumed');
    await p.verify(
      'replay-kill-takeover',
      all,
      `60 keys lost and replayed in ${String(done!.chunks_total)} chunks ` +
        `while ${phase3.length} new messages streamed; ` +
        `active daemon SIGKILLed after chunk ${String(running!.chunks_done)}, standby resumed the job ` +
        `${secondsSince(killedAt, resumed?.['time'])} s later; the CLI followed it to the end`,
    );
    expect(await standby!.stop()).toBe(0);
    await p.close();
  });
});
