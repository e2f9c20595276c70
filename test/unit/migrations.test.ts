/**
 * The rules of CONTRIBUTING.md that need no server: migrations are numbered
 * in order, import nothing from the live builders (only their own frozen
 * copies, pure SQL helpers, the ClickHouse handle's type, the config and errors), and every old name in the
 * migrator's alias table stands for a migration that exists under its new name.
 * And consumption starts last: a view reading the Kafka queue is the last
 * statement of any migration that creates one, so every object its rows reach
 * exists before the engine consumes and commits offsets (0002's first version
 * broke this and lost messages consumed before its staging view existed).
 */
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/clickhouse/client.ts';
import { qualified } from '../../src/clickhouse/sql.ts';
import { validateConfig, type PipelineConfig } from '../../src/config/index.ts';
import { migrations, type MigrationStatement } from '../../src/provisioning/migrations/index.ts';
import { currentMigrationName, MIGRATION_ALIASES } from '../../src/provisioning/migrator.ts';

const dir = new URL('../../src/provisioning/migrations/', import.meta.url);

describe('migrations', () => {
  it('are numbered 0001, 0002, ... in order, each name once', () => {
    const names = migrations.map((m) => m.name);
    names.forEach((name, i) => expect(name).toMatch(new RegExp(`^${String(i + 1).padStart(4, '0')}_[a-z0-9_]+$`)));
    expect(new Set(names).size).toBe(names.length);
  });

  it('import nothing from the live builders', async () => {
    const allowed = [
      /^\.\/(types|\d{4}_[a-z0-9_]+(\.render)?)\.ts$/,
      /^\.\.\/\.\.\/clickhouse\/(sql|client)\.ts$/,
      /^\.\.\/\.\.\/config\//,
      /^\.\.\/\.\.\/errors\.ts$/,
    ];
    const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
    expect(files.length).toBeGreaterThanOrEqual(migrations.length);
    for (const file of files) {
      const text = await readFile(new URL(file, dir), 'utf8');
      const from = [...text.matchAll(/^import\b[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] ?? '');
      for (const path of from)
        expect(
          allowed.some((a) => a.test(path)),
          `${file} imports ${path}`,
        ).toBe(true);
    }
  });

  it('old names stand for migrations that exist under their new names', () => {
    const names = new Set(migrations.map((m) => m.name));
    for (const [name, old] of Object.entries(MIGRATION_ALIASES)) {
      expect(names.has(name), name).toBe(true);
      for (const o of old) {
        expect(names.has(o), `${o} is an old name, not a current one`).toBe(false);
        expect(o.slice(0, 4), `${o} keeps the number of ${name}`).toBe(name.slice(0, 4));
        expect(currentMigrationName(o)).toBe(name);
      }
    }
    expect(currentMigrationName('0005_seen_hash_and_kept_counts')).toBe('0005_seen_hash_and_write_time');
    expect(currentMigrationName('0003_leases')).toBe('0003_leases');
  });

  it('start consumption last: a view reading the Kafka queue is the last statement of its migration', async () => {
    const pipelines: PipelineConfig[] = validateConfig(
      {
        pipelines: [
          {
            name: 'orders',
            source: {
              brokers: ['k:9093'],
              topics: ['orders'],
              auth: { protocol: 'SASL_PLAINTEXT', mechanism: 'PLAIN', username: 'u', password: 'pw' },
            },
            columns: [
              { name: 'tenant', type: 'LowCardinality(String)' },
              { name: 'order_id', type: 'UInt64', path: 'order.id' },
              { name: 'at', type: "DateTime64(3, 'UTC')" },
            ],
            dedup: { key: ['tenant', 'order_id'], window: '2h', time: { column: 'at' } },
            sink: { table: 'orders' },
          },
          {
            name: 'users',
            source: { brokers: ['k:9092'], topics: ['users'] },
            columns: [{ name: 'event_id', type: 'UUID' }],
            dedup: { window: '1h' },
            sink: { table: 'u' },
          },
        ],
      },
      'test',
      {},
    ).pipelines;
    for (const p of pipelines) {
      const queue = qualified(p.sink.database, `winnow_${p.name}_queue`);
      const readsQueue = (s: MigrationStatement): boolean =>
        s.sql.startsWith('CREATE MATERIALIZED VIEW') && s.sql.includes(`FROM ${queue}`);
      for (const m of migrations) {
        const out: MigrationStatement[] = [];
        await m.up({
          db: undefined as unknown as Db,
          pipeline: p,
          kafkaPassword: 'pw',
          finalExists: false,
          dropFinal: false,
          run: (s) => {
            out.push(...s);
            return Promise.resolve();
          },
        });
        const readers = out.flatMap((s, i) => (readsQueue(s) ? [i] : []));
        expect(readers.length, `${m.name}: views reading the queue`).toBeLessThanOrEqual(1);
        if (readers.length === 1)
          expect(readers[0], `${m.name}: the view reading the queue comes last`).toBe(out.length - 1);
      }
    }
  });
});
