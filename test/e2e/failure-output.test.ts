/**
 * Failures read as one line (issue 11, point 4), on the real servers.
 *
 * - `winnow stats` with a wrong sink.url or password prints one line that
 *   names the key and the URL, no SQL; --verbose adds the cause chain.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTopic, freshDatabase, servers, uniqueName } from '../support/helpers.ts';
import { runCli } from '../support/cli.ts';

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function configFile(
  topic: string,
  db: string,
  sink: { url?: string; extra?: string } = {},
): Promise<{ file: string; name: string }> {
  const s = servers();
  const name = uniqueName('out');
  const yaml = `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }
    dedup: { window: 1h }
    sink: { url: ${sink.url ?? s.clickhouseUrl}, database: ${db}, table: events${sink.extra ?? ''} }
    schedule: { interval: 1s }
`;
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-out-')), 'winnow.yaml');
  await writeFile(file, yaml);
  return { file, name };
}

const nonEmpty = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

describe('failures read as one line', () => {
  it('stats names sink.url and its URL in one line: ClickHouse unreachable, or the password refused', async () => {
    const topic = uniqueName('out');
    await createTopic(topic, 1);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const { file } = await configFile(topic, 'nowhere', { url });
    const r = await runCli(['stats', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const err = nonEmpty(r.stderr);
    process.stderr.write(
      `failure output: stats with a wrong sink.url printed ${err.length} line(s): ${err.join(' | ')}\n`,
    );
    expect(err).toHaveLength(1);
    expect(err[0]).toContain('sink.url');
    expect(err[0]).toContain(url);
    expect(err[0]).toMatch(/connection refused/);
    expect(err[0]).not.toMatch(/SELECT|INSERT|FROM /);

    const verbose = await runCli(['stats', '--config', file, '--verbose']);
    expect(verbose.code).toBe(1);
    const lines = nonEmpty(verbose.stderr);
    expect(lines[0]).toBe(err[0]);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.slice(1).join('\n')).toMatch(/caused by: .*ECONNREFUSED/);
    expect(verbose.stderr).not.toMatch(/SELECT|INSERT|FROM /);

    const { name: db } = await freshDatabase('winnow_out');
    const wrong = await configFile(topic, db, { extra: ', password: { env: TEST_WRONG_PASSWORD }' });
    const pw = await runCli(['stats', '--config', wrong.file], { TEST_WRONG_PASSWORD: 'not-the-password' });
    expect(pw.code).toBe(1);
    const pwLines = nonEmpty(pw.stderr);
    process.stderr.write(
      `failure output: stats with a wrong password printed ${pwLines.length} line(s): ${pwLines.join(' | ')}\n`,
    );
    expect(pwLines).toHaveLength(1);
    expect(pwLines[0]).toContain(`sink.url ${servers().clickhouseUrl}`);
    expect(pwLines[0]).toContain('sink.password');
    expect(pwLines[0]).not.toContain('not-the-password');
    expect(pwLines[0]).not.toMatch(/SELECT|INSERT|FROM /);
  });
});
