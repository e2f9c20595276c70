/**
 * `winnow dev up` shows what it waits on, on stderr: the Kafka jars' download
 * as bytes of total with percent, then the servers starting. Here the jars come
 * from a Maven repository served on localhost (WINNOW_MAVEN_URL) out of this
 * machine's ~/.m2, slowed down so that the download lasts a few seconds, into
 * an empty cache and an empty Maven local repository: a real first run. Not a
 * terminal: plain lines, not more than one every ~2 s; stdout keeps its one
 * JSON object.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KAFKA_VERSION } from '../../dev/kafka-jars.ts';
import { BIN } from '../support/cli.ts';

const M2 = path.join(os.homedir(), '.m2', 'repository');
const FREE_PORTS = ['--clickhouse-http-port', '0', '--clickhouse-tcp-port', '0', '--kafka-port', '0'];

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!existsSync(path.join(M2, 'org', 'apache', 'kafka', 'kafka_2.13', KAFKA_VERSION)))(
  'dev up download progress',
  () => {
    const dirs: string[] = [];
    let server: http.Server | undefined;
    afterAll(async () => {
      server?.close();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    });

    it('prints the jars downloaded of the total with percent, then the servers, on stderr', async () => {
      const requests: string[] = [];
      server = http.createServer((req, res) => {
        const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
        const file = path.join(M2, rel);
        requests.push(rel);
        if (!file.startsWith(M2 + path.sep)) return void res.writeHead(403).end();
        readFile(file).then(
          (body) => {
            // A slow mirror: every jar takes 150 ms, so the download lasts some seconds.
            setTimeout(
              () => res.writeHead(200, { 'content-length': body.length }).end(body),
              rel.endsWith('.jar') ? 150 : 0,
            );
          },
          () => res.writeHead(404).end(),
        );
      });
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'winnow-devprog-'));
      dirs.push(tmp);
      const env = {
        WINNOW_MAVEN_URL: `http://127.0.0.1:${port}/`,
        WINNOW_CACHE_DIR: path.join(tmp, 'cache'),
        MAVEN_OPTS: `-Dmaven.repo.local=${path.join(tmp, 'm2')}`,
      };
      const stateDir = path.join(tmp, 'state');
      const up = await run(
        ['dev', 'up', '--json', ...FREE_PORTS, '--kafka-sasl-port', '0', '--state-dir', stateDir],
        env,
      );
      try {
        expect(up.code, up.stderr).toBe(0);
        expect(requests.some((r) => r.endsWith(`kafka_2.13-${KAFKA_VERSION}.jar`))).toBe(true);
        // stdout: one JSON object, nothing else.
        expect(up.stdout.trim().split('\n')).toHaveLength(1);
        expect((JSON.parse(up.stdout) as { kafka: { version: string } }).kafka.version).toBe(KAFKA_VERSION);

        const lines = up.stderr.split('\n').filter((l) => l !== '');
        expect(up.stderr).not.toContain('\r');
        const download = new RegExp(
          `downloading the Kafka jars from 127\\.0\\.0\\.1:${port} \\(first run only\\): ([\\d.]+) (?:B|kB|MB) of 47\\.7 MB \\((\\d+)%\\), \\d+s`,
        );
        const shown = lines.map((l) => download.exec(l)).filter((m) => m !== null);
        expect(shown.length, up.stderr).toBeGreaterThanOrEqual(2);
        const percents = shown.map((m) => Number(m[2]));
        expect(percents, up.stderr).toEqual([...percents].sort((a, b) => a - b));
        expect(percents.at(-1)! > percents[0]!, up.stderr).toBe(true);
        // Plain lines: the progress lines are about 2 s apart, so a download of n seconds has no more than n/2 + 1.
        const seconds = lines
          .map((l) => Number(/, (\d+)s(?: \||$)/.exec(l)?.[1] ?? NaN))
          .filter((n) => !Number.isNaN(n));
        expect(seconds.length).toBeLessThanOrEqual(Math.max(...seconds) / 2 + 2);
        // The download ends at its total (Maven rounds the sizes it reports: 99 or 100%); then only the servers are waited on.
        expect(percents.at(-1), up.stderr).toBeGreaterThanOrEqual(99);
        const last = lines.at(-1) ?? '';
        expect(last, up.stderr).toMatch(/starting (Kafka|ClickHouse), \d+s/);
        expect(last).not.toContain('downloading');
      } finally {
        const down = await run(['dev', 'down', '--state-dir', stateDir], env);
        expect(down.code, down.stderr).toBe(0);
      }
    }, 240_000);
  },
);
