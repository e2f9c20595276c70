/**
 * The grants of `migrate` (README "Grants", src/provisioning/grants.ts) are
 * what its statements need, nothing more, nothing less: the migrator walked
 * without a server (a recording Db) through `up` on a new and on an adopted
 * table, `down --drop-final` and `status`. CREATE DATABASE only where the
 * database is missing. The runtime roles are checked in statements.test.ts,
 * next to every runtime statement. README shows them as they render.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { validateConfig, type PipelineConfig } from '../../src/config/index.ts';
import { createDatabaseGrant, grantQueries, grantStatements } from '../../src/provisioning/grants.ts';
import { migrations } from '../../src/provisioning/migrations/index.ts';
import { Migrator } from '../../src/provisioning/migrator.ts';
import { privilegesGranted, privilegesOf, recordingDb } from '../support/privileges.ts';

function pipeline(sink: Record<string, unknown>): PipelineConfig {
  return validateConfig(
    {
      pipelines: [
        {
          name: 'orders',
          source: { brokers: ['k:9092'], topics: ['orders'] },
          columns: [
            { name: 'tenant', type: 'LowCardinality(String)' },
            { name: 'order_id', type: 'UInt64' },
          ],
          dedup: { key: ['tenant', 'order_id'], window: '1h' },
          sink: { database: 'shop', table: 'orders', ...sink },
        },
      ],
    },
    'test',
    {},
  ).pipelines[0]!;
}

interface World {
  database: boolean;
  /** the final table's columns, when it exists */
  final?: { name: string; type: string }[];
  /** migrations in the history */
  history: string[];
}

/** A recording Db answering the migrator's questions about the world. */
function worldDb(w: World): ReturnType<typeof recordingDb> {
  return recordingDb((sql) => {
    if (sql.includes('FROM system.databases')) return [{ n: w.database ? '1' : '0' }];
    if (sql.includes('FROM system.columns')) return w.final ?? [];
    if (sql.includes('engine, create_table_query AS create'))
      return [{ engine: 'MergeTree', create: 'ENGINE = MergeTree' }];
    if (/count\(\) AS n FROM system\.tables/.test(sql)) return [{ n: w.history.length > 0 ? '1' : '0' }];
    if (sql.includes('SELECT DISTINCT name')) return w.history.map((name) => ({ name }));
    return [];
  });
}

// Migrations only: the recording Db cannot answer drift's comparison (it asks the server to format
// CREATE statements). Drift's in-place steps need what the migrations need, plus a view's new query.
const quiet = { dryRun: false, kafkaPassword: undefined, print: () => undefined, inPlace: false };
const DRIFT_ONLY = ['ALTER VIEW MODIFY QUERY'];

describe('the grants of migrate', () => {
  it('are what up, down and status need: each one needed, none missing', async () => {
    const p = pipeline({ engine: "ReplicatedMergeTree('/t/{shard}/orders', '{replica}')" });
    const all = migrations.map((m) => m.name);
    const fresh = worldDb({ database: true, history: [] });
    await new Migrator(fresh, p).up(quiet);
    // An existing table without a deduplication window gets one (ALTER ... MODIFY SETTING).
    const adopted = worldDb({
      database: true,
      history: [],
      final: p.columns.map((c) => ({ name: c.name, type: c.type })),
    });
    await new Migrator(adopted, pipeline({ mode: 'adopt' })).up(quiet);
    const down = worldDb({ database: true, history: all });
    await new Migrator(down, p).down({ ...quiet, dropFinal: true });
    const status = worldDb({ database: true, history: all });
    await new Migrator(status, p).status();

    const statements = [...fresh.statements, ...adopted.statements, ...down.statements, ...status.statements];
    const needed = new Set(statements.flatMap((sql) => privilegesOf(sql, () => 'unknown')));
    expect([...needed, ...DRIFT_ONLY].sort()).toEqual(privilegesGranted(grantQueries('migrate', p)).sort());
    expect(needed).toContain('TABLE ENGINE ON ReplicatedMergeTree');
    expect(needed).toContain('ALTER SETTINGS');
    expect(statements.some((s) => s.startsWith('CREATE DATABASE'))).toBe(false);
    // status only reads.
    expect(new Set(status.statements.flatMap((sql) => privilegesOf(sql, () => 'unknown')))).toEqual(
      new Set(['SELECT']),
    );
  });

  it('need CREATE DATABASE only where the database is missing, and --dry-run says so only then', async () => {
    const p = pipeline({});
    const missing = worldDb({ database: false, history: [] });
    await new Migrator(missing, p).up(quiet);
    expect(missing.statements.filter((s) => s.startsWith('CREATE DATABASE'))).toEqual([
      'CREATE DATABASE IF NOT EXISTS `shop`',
    ]);
    expect(privilegesGranted([createDatabaseGrant(p)])).toEqual(['CREATE DATABASE']);
    for (const database of [true, false]) {
      const printed: string[] = [];
      await new Migrator(worldDb({ database, history: [] }), p).up({
        ...quiet,
        dryRun: true,
        print: (l) => printed.push(l),
      });
      expect(
        printed.some((l) => l.includes('CREATE DATABASE')),
        `database exists: ${database}`,
      ).toBe(!database);
    }
  });

  it('are in README "Grants" as they render, for the example pipeline in a database analytics', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /```sql\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('\n## Grants\n')))?.[1] ?? '';
    const statements = block
      .replace(/--[^\n]*\n/g, '')
      .split(';')
      .map((x) => x.replace(/\s+/g, ' ').trim())
      .filter((x) => x !== '');
    const doc = parseYaml(await readFile(new URL('../../examples/users.yaml', import.meta.url), 'utf8')) as {
      pipelines: { sink: Record<string, unknown> }[];
    };
    for (const p of doc.pipelines) p.sink['database'] = 'analytics';
    const example = validateConfig(doc, 'examples/users.yaml', {}).pipelines[0]!;
    expect(statements).toEqual([
      ...grantStatements('migrate', example, 'winnow_migrate'),
      ...grantStatements('run', example, 'winnow_run'),
      ...grantStatements('read', example, 'winnow_read'),
    ]);
    expect(block).toContain(`-- ${createDatabaseGrant(example)} TO \`winnow_migrate\`;`);
    // examples/users.yaml names them too, in a comment (identifiers unquoted).
    const comment = (await readFile(new URL('../../examples/users.yaml', import.meta.url), 'utf8'))
      .split('\n')
      .flatMap((line) => /^\s*#(.*)$/.exec(line)?.slice(1) ?? [])
      .join(' ')
      .replace(/\s+/g, ' ');
    for (const role of ['migrate', 'run', 'read'] as const) {
      for (const g of grantQueries(role, example)) expect(comment).toContain(g.replaceAll('`', ''));
    }
  });

  it('render as ready-to-run GRANT statements', () => {
    expect(grantStatements('migrate', pipeline({}), 'winnow_migrate')).toEqual([
      'GRANT SELECT, INSERT, ALTER DELETE, ALTER ADD COLUMN, ALTER MODIFY COLUMN, ALTER DROP COLUMN, ALTER TTL, ' +
        'ALTER SETTINGS, ALTER ADD CONSTRAINT, ALTER DROP CONSTRAINT, ALTER VIEW MODIFY QUERY, CREATE TABLE, ' +
        'CREATE VIEW, DROP TABLE, DROP VIEW ON `shop`.* TO `winnow_migrate`',
      'GRANT TABLE ENGINE ON MergeTree, TABLE ENGINE ON ReplacingMergeTree, TABLE ENGINE ON Null, ' +
        'TABLE ENGINE ON Kafka TO `winnow_migrate`',
    ]);
  });
});
