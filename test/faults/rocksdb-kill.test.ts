/**
 * dedup.index rocksdb under the daemon's crashes: the daemon is killed
 * (SIGKILL, by WINNOW_FAULT) at each step of slice 2: before its insert, with
 * the insert in flight, after the insert (which wrote the seen-key index
 * through its view, 0014/0015: the rows the insert marked; not yet committed), after the commit. A restarted
 * daemon must finish the slice and the stream exactly as without the crash,
 * and the index must hold every kept key at its latest kept time. A re-run
 * after the insert meets entries of its own slice and must decide as its
 * first attempt did (kept_near_kv.sql falls back to the seen keys for them).
 * WINNOW_FAULTS_BURN=1 runs one busy-looping process per core meanwhile.
 * At the end, the server's log must not say that an INSERT SELECT ran without
 * deduplication.
 * Invariants: I6, I5 for the re-run slice, and through the final check I1-I4.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline, produce, Servers } from './harness.ts';

const STEPS = ['beforeInsert', 'duringInsert', 'afterInsert', 'afterCommit'] as const;
type Step = (typeof STEPS)[number];

describe.concurrent('fault: the daemon of a dedup.index rocksdb pipeline is SIGKILLed', () => {
  let servers: Servers;
  const burners: ChildProcess[] = [];

  beforeAll(async () => {
    servers = await Servers.start('rocksdb-kill');
    if (process.env['WINNOW_FAULTS_BURN'] === '1') {
      for (let i = 0; i < os.availableParallelism(); i++) {
        burners.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
      }
    }
  });

  afterAll(async () => {
    for (const b of burners.splice(0)) if (b.pid !== undefined && b.exitCode === null) process.kill(b.pid, 'SIGKILL');
    if (servers) {
      const log = await readFile(path.join(servers.dir, 'clickhouse.log'), 'utf8').catch(() => '');
      const unstable = log
        .split('\n')
        .filter((l) => l.includes('deduplication is disabled because SELECT is not stable'));
      process.stderr.write(`rocksdb-kill: ${unstable.length} "deduplication is disabled" lines in ${servers.dir}\n`);
      await servers.stop();
      expect(unstable).toEqual([]);
    }
  });

  const scenario = async (step: Step, seed: number): Promise<void> => {
    const p = new Pipeline(servers, { label: `kv_${step.toLowerCase()}`, maxSliceRows: 300, index: 'rocksdb' });
    await p.create();
    const phases = p.generate(seed, 1500);
    const [phase1 = [], phase2 = []] = phases;
    const kafka = servers.kafkaClient();
    await p.killedAt(step, 2, phase1);
    const slicesTable = p.table('winnow_slices');
    const [planned] = await p.query<{ slice_id: string }>(
      `SELECT slice_id FROM ${slicesTable} WHERE pipeline = '${p.name}' AND seq = 2 AND status = 'planned'`,
    );
    const slice2 = planned!.slice_id;
    const kv = p.table(`winnow_${p.name}_seen_kv`);
    const entriesOf2 = async (): Promise<number> => {
      const [r] = await p.query<{ n: string }>(`SELECT count() AS n FROM ${kv} WHERE __s = sipHash64('${slice2}')`);
      return Number(r?.n ?? 0);
    };
    // The index is written by the insert itself (its view, 0014): none of slice 2's entries before
    // it, all after it; killed during it, the server may or may not have finished it.
    if (step === 'duringInsert') await sleep(1_000);
    const before = await entriesOf2();
    if (step === 'afterInsert' || step === 'afterCommit') expect(before).toBeGreaterThan(0);
    else if (step === 'beforeInsert') expect(before).toBe(0);

    const daemon = await p.startDaemon();
    await p.waitQuiescent(phase1, 150_000);
    const first = daemon.slices()[0];
    if (step === 'afterCommit') expect(first).toMatchObject({ seq: 3, resumed: false });
    else expect(first).toMatchObject({ seq: 2, resumed: true, slice: slice2 });

    await produce(kafka, phase2);
    await p.waitQuiescent([...phase1, ...phase2]);
    const doubleCommits = await p.query<{ seq: string }>(
      `SELECT seq FROM ${slicesTable} WHERE pipeline = '${p.name}' AND status = 'committed' GROUP BY seq HAVING count() > 1`,
    );
    expect(doubleCommits).toEqual([]);
    // Every kept key has its index entry at its latest kept time.
    const [idx] = await p.query<{ keys: string; entries: string; behind: string }>(
      `SELECT count() AS keys, countIf(e.h != 0) AS entries, countIf(e.h != 0 AND e.__t != s.t) AS behind
       FROM (SELECT reinterpretAsUInt128(sipHash128(event_id)) AS h, max(__t) AS t FROM ${p.table(`winnow_${p.name}_seen`)} GROUP BY h) AS s
       LEFT JOIN ${kv} AS e ON e.h = s.h`,
    );
    expect(Number(idx?.entries)).toBe(Number(idx?.keys));
    expect(Number(idx?.behind)).toBe(0);
    await p.verify(
      `rocksdb-kill-${step}`,
      phases,
      `killed at slice 2 (${slice2}) with ${before} index entries of it written, ` +
        `${step === 'afterCommit' ? 'went on with slice 3' : 'resumed slice 2 with the same token'}` +
        `${burners.length > 0 ? `, ${burners.length} CPU burners` : ''}`,
    );
    expect(await daemon.stop()).toBe(0);
    await p.close();
  };

  STEPS.forEach((step, i) => {
    it(`SIGKILL ${step} of slice 2, restart, exact`, () => scenario(step, 4300 + i));
  });
});
