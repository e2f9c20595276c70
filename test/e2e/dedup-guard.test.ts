/**
 * The daemon refuses to start where a token-reliant write would silently lose
 * its deduplication (I5, I6 depend on it): a table such a write lands in
 * without a deduplication window. One line names the table and the fix.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/clickhouse/client.ts';
import type { PipelineConfig } from '../../src/config/index.ts';
import { WinnowError } from '../../src/errors.ts';
import { assertTokenDeduplication } from '../../src/slicing/dedup-guard.ts';
import { runCli } from '../support/cli.ts';
import { handFedPipeline } from '../support/hand-fed.ts';
import { createTopic, uniqueName } from '../support/helpers.ts';

describe('deduplication guard', () => {
  let db: string;
  let p: PipelineConfig;
  let client: Db;
  let file: string;

  const refusal = async (): Promise<WinnowError> => {
    const err = await assertTokenDeduplication(client, p).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WinnowError);
    expect((err as WinnowError).code).toBe('DEDUP_UNSAFE');
    return err as WinnowError;
  };

  beforeAll(async () => {
    const topic = uniqueName('guard'); // run's pre-flight wants the topic to exist
    await createTopic(topic, 1);
    ({ db, p, client } = await handFedPipeline('guard', [topic], '1h'));
    const yaml = [
      'pipelines:',
      `  - name: ${p.name}`,
      `    source: { brokers: [${p.source.brokers.join(', ')}], topics: [${topic}] }`,
      '    columns:',
      ...p.columns.map((c) => `      - { name: ${c.name}, type: ${c.type} }`),
      '    dedup: { key: [event_id], window: 1h, time: ingestion }',
      `    sink: { url: '${p.sink.url}', database: ${db}, table: events }`,
    ].join('\n');
    file = path.join(await mkdtemp(path.join(os.tmpdir(), 'winnow-guard-')), 'winnow.yaml');
    await writeFile(file, yaml);
  });

  afterAll(async () => {
    await client?.close();
  });

  it('passes on a migrated pipeline', async () => {
    await expect(assertTokenDeduplication(client, p)).resolves.toBeUndefined();
  });

  it('refuses a final table without a deduplication window, in one line that names it and the fix', async () => {
    await client.command(`ALTER TABLE ${db}.events MODIFY SETTING non_replicated_deduplication_window = 0`);
    try {
      const err = await refusal();
      expect(err.message).toContain(`insert deduplication is off for \`${db}\`.\`events\``);
      expect(err.hint).toBe(
        `ALTER TABLE \`${db}\`.\`events\` MODIFY SETTING non_replicated_deduplication_window = 10000`,
      );

      const r = await runCli(['run', '--config', file, '--port', '0'], { WINNOW_LEASE_EPOCH_MS: '2000' }, 60_000);
      expect(r.code, r.stderr).toBe(1);
      // Like everything `winnow run` prints, its refusal is a JSON line, the one error after its pre-flight passed.
      const lines = r.stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: string; msg: string });
      expect(lines.filter((l) => l.msg.includes('pre-flight ok'))).toHaveLength(1);
      const errors = lines.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      const line = errors[0] as { level: string; msg: string; command: string; code: string };
      expect(line).toMatchObject({ level: 'error', command: 'run', code: 'DEDUP_UNSAFE' });
      expect(line.msg).toMatch(/^pipeline \w+: insert deduplication is off for .*events.* a resumed slice could be/);
      expect(line.msg).toContain('written twice');
      expect(line.msg).toContain('(ALTER TABLE');
    } finally {
      await client.command(`ALTER TABLE ${db}.events MODIFY SETTING non_replicated_deduplication_window = 10000`);
    }
  });

  it('refuses a slices table an older winnow created, and says to migrate', async () => {
    await client.command(`ALTER TABLE ${db}.winnow_slices RESET SETTING non_replicated_deduplication_window`);
    try {
      const err = await refusal();
      expect(err.message).toContain('winnow_slices');
      expect(err.hint).toBe('run winnow migrate up');
    } finally {
      await client.command(
        `ALTER TABLE ${db}.winnow_slices MODIFY SETTING non_replicated_deduplication_window = 10000`,
      );
    }
    await expect(assertTokenDeduplication(client, p)).resolves.toBeUndefined();
  });
});
