/**
 * `winnow top` against a daemon with traffic: frames with the pipeline's
 * rates and health, `q` on stdin quits promptly with exit code 0, and `--once`
 * prints one frame and exits.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, startDaemon, type Daemon } from '../support/cli.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';

const uuid = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;

describe('winnow top', () => {
  const name = uniqueName('top');
  const topic = uniqueName('top');
  const env = { WINNOW_LEASE_EPOCH_MS: '2000' };
  let file: string;
  let daemon: Daemon | undefined;
  let sent = 0;

  const send = async (n: number, dupEvery = 5): Promise<void> => {
    const producer = kafka().producer();
    await producer.connect();
    const messages: { value: string }[] = [];
    for (let i = sent; i < sent + n; i++) {
      const v = JSON.stringify({ event_id: uuid(i), user_name: `n${i}` });
      messages.push({ value: v });
      if (i % dupEvery === 0) messages.push({ value: v });
    }
    sent += n;
    await producer.send({ topic, messages });
    await producer.disconnect();
  };

  beforeAll(async () => {
    const s = servers();
    const db = (await freshDatabase('winnow_top')).name;
    await createTopic(topic, 1);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-top-'));
    file = path.join(dir, 'top.yaml');
    await writeFile(
      file,
      `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
    schedule: { checkInterval: 1h }
`,
    );
    const up = await runCli(['migrate', 'up', '--config', file], env);
    expect(up.code, up.stderr).toBe(0);
    daemon = await startDaemon(file, env);
    await send(200);
    await waitFor(
      () => runCli(['stats', '--config', file, '--json'], env),
      (r) => r.code === 0 && /"inserted": 200,/.test(r.stdout),
      60_000,
      '200 rows inserted',
    );
  });

  afterAll(async () => {
    if (daemon) expect(await daemon.stop()).toBe(0);
  });

  it('--once prints one frame with the pipeline, its health and its last slice, and exits 0', async () => {
    const r = await runCli(['top', '--config', file, '--once'], env, 30_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^winnow top {2}\S+top\.yaml {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n/);
    expect(r.stdout).toMatch(/PIPELINE +HEALTH +IN\/s +INSERTED\/s +DUP\/s +DUP % +WAITING +LAG +DEAD +LAST SLICE/);
    const row = r.stdout.split('\n').find((l) => l.startsWith(name));
    // 200 events, 40 sent twice: 40 / 240 dropped; nothing arrives during the frame, so the rates are 0.
    expect(row).toMatch(
      new RegExp(`^${name} +processing +0\\.0 +0\\.0 +0\\.0 +16\\.7% +0 +0 +0 +\\d+s ago, \\d+ rows, \\d+ ms$`),
    );
  });

  it('refreshes while traffic arrives, shows the rates, and quits on q with exit code 0', async () => {
    const child = spawn(process.execPath, [BIN, 'top', '--config', file], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const rows = (): string[] => out.split('\n').filter((l) => l.startsWith(name));
    try {
      // Traffic flows until a frame has shown the rates (on a busy machine staging and slices can trail the
      // producer by seconds, so a fixed burst may end before one frame sees events in, inserted and dropped).
      let seen = false;
      const traffic = (async () => {
        for (let k = 0; k < 120 && !seen; k++) {
          await send(100, 4);
          await new Promise((r) => setTimeout(r, 500));
        }
      })();
      // A frame a second; while events arrive, some frame shows events in and inserted per second.
      try {
        await waitFor(
          () => Promise.resolve(rows()),
          (rs) => rs.some((l) => /^\S+ +processing +[1-9][\d.]* +[1-9][\d.]* +[1-9][\d.]* /.test(l)),
          60_000,
          'a frame with rates',
        );
      } finally {
        seen = true;
        await traffic;
      }
      expect(rows().length).toBeGreaterThan(2);
      // Not a terminal: no escape sequences, one block per refresh.
      expect(out).not.toContain('\x1b');
      const quitAt = Date.now();
      child.stdin.write('q');
      expect(await exited, err).toBe(0);
      expect(Date.now() - quitAt).toBeLessThan(3_000);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
