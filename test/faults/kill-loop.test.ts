/**
 * Issue 9: the daemon SIGKILLed again and again, on a machine whose CPU is
 * taken, while events stream in (the reliability probe's pattern).
 *
 * A producer offers ~2.5k events/s of the seeded stream for the whole run:
 * phase 1 of test/support/oracle.ts (originals, ~8% same-partition exact re-sends,
 * ~8% retries with a new payload, the malformed messages), generated in chunks
 * as it goes, each later than the one before in every partition. Every
 * duplicate sits in its original's partition, so the oracle's answer does not
 * depend on where slices end.
 * One busy-looping process per core competes for the CPU throughout. With a
 * short lease epoch, 20+ times: start `winnow run`, wait until it logs that it
 * holds the lease ('processing'), let it work 1-8 s (seeded), SIGKILL it, and
 * start the next one at once. Many kills land inside a slice, so the next
 * daemon resumes that planned slice with the same deduplication token while
 * staging keeps receiving (and merging) parts underneath it. Then production
 * stops and a clean daemon drains everything.
 * Invariants: I5 (a resumed slice adds nothing twice: no seen key written twice
 * by one slice), I6, and through the final checks I1-I4; `winnow check` agrees.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { expectedRows, rng, type GenMessage } from '../support/oracle.ts';
import { Pipeline, produce, readLog, Servers, waitFor, WINDOW_MS, type DaemonProc } from './harness.ts';

const KILLS = 20;
const EPOCH_MS = 1_000; // the shortest allowed: a takeover waits at most two epochs, so the test stays near 3 minutes
const RATE = 2_500; // offered messages/s
const SEED = 9100;
/** Originals per generated chunk (about 1.2 messages each: ~5 s of the stream). */
const CHUNK_ORIGINALS = 10_000;

/**
 * The endless stream: phase 1 of the seeded generator again and again, each
 * chunk later than everything before it in every partition, so all of it is
 * one phase for the oracle (processed in offset order within a partition).
 */
function* stream(p: Pipeline): Generator<GenMessage[]> {
  let base = Date.now() - 5 * 60_000;
  for (let k = 0; ; k++) {
    const [chunk = []] = p.generate(SEED + 1_000 + k, CHUNK_ORIGINALS, base);
    base = Math.max(...chunk.map((m) => m.timestamp)) + 1_000;
    yield chunk;
  }
}

/** One CPU-bound child process per core, there until stopped (by PID). */
class Burners {
  private readonly children: ChildProcess[] = [];

  start(n: number): void {
    for (let i = 0; i < n; i++) this.children.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  }

  get pids(): number[] {
    return this.children.map((c) => c.pid ?? -1);
  }

  async stop(): Promise<void> {
    const left = this.children.splice(0);
    await Promise.all(
      left.map((c) => {
        if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
        const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
        if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
        return gone;
      }),
    );
  }
}

describe('fault: the daemon is SIGKILLed again and again under CPU load while events stream', () => {
  let servers: Servers;
  const burners = new Burners();

  beforeAll(async () => {
    servers = await Servers.start('kill-loop');
  });

  afterAll(async () => {
    await burners.stop();
    await servers?.stop(); // also SIGKILLs any daemon a failed run left
  });

  it(`${KILLS} SIGKILLs 1-8 s after each takeover, busy CPU, ~${RATE}/s with re-sends; a clean daemon drains; exact, no slice writes twice`, async () => {
    const began = Date.now();
    const env = { WINNOW_LEASE_EPOCH_MS: String(EPOCH_MS) };
    const p = new Pipeline(servers, { label: 'killloop', maxSliceRows: 1_000_000 });
    await p.create();
    const kafka = servers.kafkaClient();
    const r = rng(SEED);

    burners.start(os.availableParallelism());
    let stopProducing = false;
    const sent: GenMessage[] = [];
    let resent = 0;
    const producingFrom = Date.now();
    const producing = (async () => {
      for (const chunk of stream(p)) {
        const res = await produce(kafka, chunk, { batch: 250, ratePerSec: RATE, stop: () => stopProducing });
        sent.push(...chunk.slice(0, res.sent));
        resent += res.resent;
        if (res.sent < chunk.length) return;
      }
    })().then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    );

    const daemons: DaemonProc[] = [];
    const holds: number[] = [];
    const takeovers: number[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        const t0 = Date.now();
        const d = await p.startDaemon(env);
        daemons.push(d);
        await waitFor(
          () => Promise.resolve(d.count('processing') > 0 || !d.running),
          (v) => v,
          60_000,
          `daemon ${k + 1} (pid ${d.pid}) to hold the lease`,
          50,
        );
        expect(d.running, `daemon ${k + 1} died by itself:\n${d.logs}`).toBe(true);
        takeovers.push(Date.now() - t0);
        const holdMs = 1_000 + Math.floor(r() * 7_000);
        holds.push(holdMs);
        await sleep(holdMs);
        d.kill('SIGKILL');
        expect((await d.exited).signal).toBe('SIGKILL');
      }
    } finally {
      stopProducing = true;
    }
    const failed = await producing;
    if (failed) throw failed;
    const producedS = (Date.now() - producingFrom) / 1000;
    // A send the client gave up on and repeated may have been written: then Kafka's log is the truth.
    const phases: GenMessage[][] = resent > 0 ? await readLog(kafka, p.topics, [sent]) : [sent];
    const all = phases.flat();

    // A clean daemon drains the backlog, still under CPU load; then it stops cleanly.
    const drainFrom = Date.now();
    const last = await p.startDaemon(env);
    daemons.push(last);
    await p.waitQuiescent(all, 150_000);
    const drainS = (Date.now() - drainFrom) / 1000;
    expect(await last.stop()).toBe(0);
    await burners.stop();

    // Figures first (logged even when an assertion below fails).
    const slices = daemons.flatMap((d) => d.slices());
    const resumed = slices.filter((s) => s['resumed'] === true).map((s) => String(s['slice']));
    const seen = p.table(`winnow_${p.name}_seen`);
    const twice = await p.query<{ slice: string; keys: string; extra: string }>(
      `SELECT __slice AS slice, count() AS keys, sum(c - 1) AS extra
       FROM (SELECT __slice, event_id, __t, count() AS c FROM ${seen} GROUP BY __slice, event_id, __t HAVING c > 1)
       GROUP BY __slice ORDER BY __slice`,
    );
    const [fin] = await p.query<{ rows: string; keys: string }>(
      `SELECT count() AS rows, uniqExact(event_id, created_at) AS keys FROM ${p.table('users_dedup')}`,
    );
    const expected = expectedRows(phases, WINDOW_MS).length;
    const finalRows = Number(fin?.rows ?? 0);
    const seenTwice = twice.reduce((n, t) => n + Number(t.keys), 0);
    const twiceResumed = twice.filter((t) => resumed.includes(t.slice)).length;
    const check = await runCli(['check', '--config', p.configFile, '--no-repair'], env, 180_000);
    const durationS = (Date.now() - began) / 1000;
    process.stderr.write(
      `fault kill-loop: ${KILLS} kills (held ${(Math.min(...holds) / 1000).toFixed(1)}-${(Math.max(...holds) / 1000).toFixed(1)} s, ` +
        `start to 'processing' ${(Math.min(...takeovers) / 1000).toFixed(1)}-${(Math.max(...takeovers) / 1000).toFixed(1)} s), ` +
        `${daemons.length} daemons, ${slices.length} slices logged, ${resumed.length} resumed; ` +
        `${all.length} messages sent in ${producedS.toFixed(0)} s (${(all.length / producedS).toFixed(0)}/s), ${os.availableParallelism()} CPU burners; ` +
        `final ${finalRows} rows for ${expected} expected (${finalRows - expected} extra); ` +
        `${seenTwice} seen keys written twice by ${twice.length} slices (${twiceResumed} of them resumed); ` +
        `winnow check exit ${check.code}; ${durationS.toFixed(0)} s (final drain ${drainS.toFixed(0)} s)\n`,
    );

    expect(resumed.length, 'kills that landed inside a slice (resumed slices)').toBeGreaterThan(0);
    expect(twice, 'seen keys a slice wrote twice (slice, keys, extra rows)').toEqual([]);
    await p.verify('kill-loop', phases, `${KILLS} SIGKILLs, ${resumed.length} slices resumed`);
    expect(check.code, `winnow check:\n${check.stdout}\n${check.stderr}`).toBe(0);
    await p.close();
  });
});
