/**
 * Fault 5: the ClickHouse server process is SIGKILLed (no clean shutdown)
 * while a producer streams and the daemon runs, then started again on the
 * same data directory and ports; twice: once 40% into phase 1's stream, once
 * in phase 2 at the moment a slice insert of the daemon runs on the server
 * (seen in system.processes). The daemon and the Kafka engine must recover by
 * themselves: the daemon retries each tick and re-runs a planned slice with
 * its token; the engine re-reads from its committed offsets (its killed
 * consumer stays in the group until its session times out, so consumption
 * pauses for up to ~45 s), and staging may hold re-delivered coordinates.
 * Invariants: I6 crash safety (ClickHouse), I4 (staging and dead letters after
 * re-delivery), I5 (the re-run slice), and through the final check I1-I3.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline, produce, Servers, waitFor, type DaemonProc } from './harness.ts';

describe('fault: ClickHouse is killed and restarted mid-stream', () => {
  let servers: Servers;
  let daemon: DaemonProc | undefined;

  beforeAll(async () => {
    servers = await Servers.start('clickhouse-kill');
  });

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await servers?.stop();
  });

  it('SIGKILL ClickHouse twice while streaming; the daemon recovers by itself; exact', async () => {
    const p = new Pipeline(servers, { label: 'chkill', maxSliceRows: 400 });
    await p.create();
    const phases = p.generate(5005, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    const outages: string[] = [];
    const outage = async (why: string): Promise<void> => {
      const t = Date.now();
      await servers.killClickHouse();
      await sleep(1_500);
      await servers.startClickHouseAgain();
      outages.push(`${why}, down ${((Date.now() - t) / 1000).toFixed(1)} s`);
    };

    daemon = await p.startDaemon();
    // Phase 1: kill once 40% into the stream.
    let first: Promise<void> | undefined;
    await produce(kafka, phase1, {
      batch: 100,
      pauseMs: 400,
      onProgress: (sent) => {
        if (!first && sent >= phase1.length * 0.4)
          first = outage(`killed at ${sent}/${phase1.length} messages of phase 1`);
      },
    });
    await first;
    await p.waitQuiescent(phase1);

    // Phase 2: kill while the daemon's slice insert runs on the server (the dedup insert writes the
    // final table and the seen keys through two views, not atomically).
    const streaming = produce(kafka, phase2, { batch: 50, pauseMs: 300 });
    const kept = `winnow_${p.name}_kept`;
    const caught = await waitFor(
      () =>
        p.query<{ query_id: string }>(
          `SELECT query_id FROM system.processes WHERE query LIKE 'INSERT INTO %${kept}%' AND query NOT LIKE '%system.processes%'`,
        ),
      (rows) => rows.length > 0,
      60_000,
      'a slice insert running on the server',
      5,
    ).then(
      () => true,
      () => false,
    );
    await outage(
      caught ? 'killed while a slice insert of phase 2 ran' : 'killed mid-phase 2 (no slice insert caught running)',
    );
    await streaming;
    await p.waitQuiescent([...phase1, ...phase2]);

    // The daemon stayed up, saw the failures, and is healthy again.
    expect(daemon.running).toBe(true);
    const failures = daemon.lines().filter((l) => l.msg.startsWith('slice failed'));
    expect(failures.length, 'the daemon logged its failed ticks').toBeGreaterThan(0);
    await waitFor(
      async () => (await fetch(`${daemon!.api}/readyz`)).status,
      (s) => s === 200,
      30_000,
      'readyz to report the daemon healthy again',
    );
    const resumed = daemon.slices().filter((l) => l['resumed'] === true).length;
    await p.verify(
      'clickhouse-kill',
      phases,
      `${outages.join('; ')}; the daemon resumed ${resumed} planned slices; it logged ${failures.length} failed ticks ` +
        `(${failures.filter((f) => f['retryable'] === true).length} retryable) and recovered`,
    );
    expect(await daemon.stop()).toBe(0);
    daemon = undefined;
    await p.close();
  });
});
