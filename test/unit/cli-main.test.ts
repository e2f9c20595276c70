/**
 * The command table of `winnow` (src/cli/main.ts): every command is listed with the summary its own module
 * gives, and `winnow --help` (or an unknown command) loads no command module, so it answers at once: the
 * heavy libraries (ClickHouse client, kafkajs, fastify, umzug, zod) load only with the command that uses them.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/main.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs main(argv) in a fresh Node through tsx and says which heavy packages it loaded. They are CommonJS
 * packages, so they show in require.cache even when imported; zod and node-cron are ES modules (not there)
 * and are only imported by modules that import one of these too.
 */
function loadedBy(argv: string[]): { code: number | null; loaded: string[]; stdout: string } {
  const script = `
    import { createRequire } from 'node:module';
    const { main } = await import('./src/cli/main.ts');
    const code = await main(${JSON.stringify(argv)});
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const heavy = ['@clickhouse/client', 'kafkajs', 'fastify', 'umzug', 'yaml'];
    const loaded = heavy.filter((p) => cache.some((f) => f.includes('/node_modules/' + p + '/')));
    console.log('@@' + JSON.stringify({ code, loaded }));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
  });
  const marker = r.stdout.split('\n').find((l) => l.startsWith('@@'));
  if (!marker) throw new Error(`no result: ${r.stderr}`);
  const out = JSON.parse(marker.slice(2)) as { code: number; loaded: string[] };
  return { code: out.code, loaded: out.loaded, stdout: r.stdout };
}

describe('winnow command table', () => {
  it('lists each command with the name and summary its module gives', async () => {
    expect(COMMANDS.map((c) => c.name)).toEqual([
      'dev',
      'config',
      'migrate',
      'run',
      'stats',
      'top',
      'check',
      'replay',
      'deadletters',
      'index',
    ]);
    for (const entry of COMMANDS) {
      const command = await entry.load();
      expect({ name: command.name, summary: command.summary }).toEqual({ name: entry.name, summary: entry.summary });
    }
  });

  it('answers --help and an unknown command without loading a heavy library', () => {
    const help = loadedBy(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('deadletters');
    expect(help.loaded).toEqual([]);
    expect(loadedBy(['nosuch']).loaded).toEqual([]);
  });

  it('loads them with a command that needs them (the check above can see a load)', () => {
    // `stats --help` loads the stats module, which reaches the ClickHouse client and kafkajs.
    const r = loadedBy(['stats', '--help']);
    expect(r.code).toBe(0);
    expect(r.loaded).toEqual(expect.arrayContaining(['@clickhouse/client', 'kafkajs']));
  });
});
