/**
 * `winnow migrate up` says each step as it runs, on stdout beside its other
 * lines: the migration's name, each statement's object and kind with its time,
 * the migration's total; a change in place (drift) lists its statements with
 * their times the same way; `--dry-run` names the migrations before their SQL.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../src/provisioning/migrations/index.ts';
import { NOTHING_TO_DO } from '../../src/provisioning/migrator.ts';
import { runCli } from '../support/cli.ts';
import { createTopic, freshDatabase, servers, uniqueName } from '../support/helpers.ts';

describe('migrate up progress', () => {
  it('names each migration, then each statement with its time, then the migration with its total', async () => {
    const s = servers();
    const name = uniqueName('mp');
    const topic = uniqueName('mp');
    await createTopic(topic, 1);
    const db = (await freshDatabase('winnow_mp')).name;
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-mp-')), 'winnow.yaml');
    const yaml = (extra: string): string => `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: UUID }
      - { name: name, type: String, path: user_name }${extra}
    dedup: { window: 1h }
    sink: { url: ${s.clickhouseUrl}, database: ${db}, table: events }
`;
    await writeFile(file, yaml(''));

    const dry = await runCli(['migrate', 'up', '--config', file, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`-- migration 0001_slices\n`);

    const up = await runCli(['migrate', 'up', '--config', file]);
    expect(up.code, up.stderr).toBe(0);
    const lines = up.stdout.split('\n');
    const starts = lines.flatMap((l, i) => (/^ {2}migration \S+$/.test(l) ? [i] : []));
    expect(starts.map((i) => lines[i]!.slice('  migration '.length))).toEqual(migrations.map((m) => m.name));
    for (const [k, start] of starts.entries()) {
      const m = migrations[k]!.name;
      const end = lines.findIndex((l) => l.startsWith(`  ${m} done (`));
      expect(lines[end], up.stdout).toMatch(new RegExp(`^ {2}${m} done \\(\\d+ ms\\)$`));
      const statements = lines.slice(start + 1, end);
      expect(statements.length, `${m}\n${up.stdout}`).toBeGreaterThan(0);
      // A migration without objects for this pipeline (0013 makes the index of dedup.index rocksdb only) says so.
      if (statements.length === 1 && statements[0] === `    ${NOTHING_TO_DO}`) continue;
      for (const l of statements) expect(l).toMatch(/^ {4}\S.* \(\d+ (ms|partitions)\)$/);
    }
    expect(up.stdout).toContain(`    slices table winnow_slices (`);
    expect(up.stdout).toContain(`    Kafka queue winnow_${name}_queue (`);

    // A new column: changed in place, each statement with its time under the object it changes.
    await writeFile(file, yaml('\n      - { name: email, type: String, path: user_email, optional: true }'));
    const drift = await runCli(['migrate', 'up', '--config', file]);
    expect(drift.code, drift.stderr).toBe(0);
    expect(drift.stdout).not.toContain('  migration ');
    expect(drift.stdout).toMatch(/^ {2}differs {2}final table events: .*email/m);
    const timed = drift.stdout.split('\n').filter((l) => /^ {4}\S.* \(\d+ ms\)$/.test(l));
    expect(
      timed.some((l) => l.includes('events')),
      drift.stdout,
    ).toBe(true);
  });
});
