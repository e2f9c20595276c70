/**
 * The package as users get it: `npm pack` (its `prepare` builds dist/) yields a tarball that holds the
 * compiled CLI and its assets and nothing of the sources or tests; `npm install <tarball> --omit=optional`
 * into an empty directory (the npm registry is reached for the dependencies; optional ones are left out, as
 * in the Docker image) gives a `winnow` that answers --help, runs `migrate up --dry-run` against the real
 * servers, and refuses `dev up` in one line naming the missing embedded-ClickHouse package. This is the test
 * of the compiled CLI itself: every other test runs the sources (test/support/cli.ts). And in a checkout,
 * where the optional packages are installed, the compiled CLI starts and stops `winnow dev` (its children
 * are the compiled .js scripts, run without tsx).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createTopic, freshDatabase, servers, uniqueName } from '../support/helpers.ts';
import { processesMentioning } from '../support/processes.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** A command's exit code and output, also when it fails. */
async function exec(
  file: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

describe('npm pack', () => {
  it(
    'installs from the tarball into an empty directory and runs the compiled winnow',
    { timeout: 300_000 },
    async () => {
      const work = await mkdtemp(path.join(os.tmpdir(), 'winnow-pack-'));

      const packed = await exec('npm', ['pack', '--pack-destination', work], root);
      expect(packed.code, packed.stderr).toBe(0);
      const [tarball, ...others] = (await readdir(work)).filter((f) => f.endsWith('.tgz'));
      expect(others).toEqual([]);
      const tgz = path.join(work, tarball!);

      const listed = await exec('tar', ['tzf', tgz], work);
      const files = listed.stdout.split('\n').filter(Boolean);
      expect(files).toEqual(
        expect.arrayContaining([
          'package/package.json',
          'package/bin/winnow.mjs',
          'package/dist/src/cli/main.js',
          'package/dist/src/slicing/slice_insert.sql',
          'package/dist/src/provisioning/sql/create_final.sql',
          'package/dist/dev/supervisor.js',
        ]),
      );
      // Only what runs: no TypeScript source, no test, no script, no benchmark, no build config.
      expect(files.filter((f) => f.endsWith('.ts') || /^package\/(src|test|scripts|bench|docker)\//.test(f))).toEqual(
        [],
      );

      const app = path.join(work, 'app');
      await exec('mkdir', ['-p', app], work);
      const installed = await exec('npm', ['install', '--omit=optional', '--no-audit', '--no-fund', tgz], app);
      expect(installed.code, installed.stderr).toBe(0);
      expect(installed.stderr).not.toContain('EBADENGINE');
      for (const devOnly of ['tsx', 'typescript', 'vitest', '@chdb/lib-linux-x64-gnu', 'ffi-rs']) {
        expect(existsSync(path.join(app, 'node_modules', devOnly)), devOnly).toBe(false);
      }
      const winnow = path.join(app, 'node_modules', '.bin', 'winnow');

      const help = await exec(winnow, ['--help'], app);
      expect(help.code, help.stderr).toBe(0);
      expect(help.stdout).toContain('Usage: winnow <command> [options]');

      const s = servers();
      const { name: db } = await freshDatabase('winnow_pack');
      const topic = uniqueName('pack');
      await createTopic(topic, 1);
      const config = path.join(app, 'winnow.yaml');
      await writeFile(
        config,
        `pipelines:
  - name: ${uniqueName('pack')}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
`,
      );
      const dry = await exec(winnow, ['migrate', 'up', '--dry-run', '--config', config], app);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toMatch(/CREATE TABLE/);
      expect(dry.stdout).toContain(`${db}`);

      // Installed without optional dependencies, the embedded ClickHouse is missing: one line says which package.
      const dev = await exec(winnow, ['dev', 'up', '--state-dir', path.join(work, 'state')], app);
      expect(dev.code).toBe(1);
      expect(dev.stdout).toBe('');
      expect(dev.stderr.trim().split('\n')).toHaveLength(1);
      expect(dev.stderr).toMatch(/^winnow dev: error: the embedded ClickHouse needs the npm package @chdb\/lib-/);
    },
  );
});

describe('the compiled CLI in a checkout', () => {
  it('starts winnow dev from dist/ and stops it, leaving no process', { timeout: 180_000 }, async () => {
    const built = await exec('npm', ['run', 'build'], root);
    expect(built.code, built.stderr).toBe(0);
    const work = await mkdtemp(path.join(os.tmpdir(), 'winnow-dist-dev-'));
    const bin = path.join(root, 'bin', 'winnow.mjs');
    const state = ['--state-dir', path.join(work, 'state')];
    try {
      const free = ['--clickhouse-http-port', '0', '--clickhouse-tcp-port', '0', '--kafka-port', '0'];
      const up = await exec(
        process.execPath,
        [bin, 'dev', 'up', ...free, '--kafka-sasl-port', '0', ...state, '--json'],
        work,
      );
      expect(up.code, up.stderr).toBe(0);
      const json = JSON.parse(up.stdout) as { running: Record<string, boolean>; clickhouse: { url: string } };
      expect(json.running).toEqual({ supervisor: true, clickhouse: true, kafka: true });
      // Its processes are the compiled scripts, without tsx.
      const mine = processesMentioning(work);
      expect(mine.some((l) => l.includes('dist/dev/supervisor.js'))).toBe(true);
      expect(mine.some((l) => l.includes('dist/dev/clickhouse-child.js'))).toBe(true);
      expect(mine.filter((l) => l.includes('tsx'))).toEqual([]);
      expect((await fetch(`${json.clickhouse.url}/ping`)).ok).toBe(true);
    } finally {
      const down = await exec(process.execPath, [bin, 'dev', 'down', ...state], work);
      expect(down.code, down.stderr).toBe(0);
    }
    expect(processesMentioning(work)).toEqual([]);
    await rm(work, { recursive: true, force: true });
  });
});
