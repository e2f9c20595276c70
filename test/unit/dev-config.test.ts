/**
 * The embedded ClickHouse's generated config: extra server configuration (the
 * benchmark's <rocksdb> options) lands inside <clickhouse> next to the users
 * file; with neither users nor extra configuration there is no config file.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeUsersConfig } from '../../dev/clickhouse-users.ts';

describe('embedded ClickHouse config file', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes extra configuration inside <clickhouse>, with the users file', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-devcfg-'));
    const file = await writeUsersConfig(
      dir,
      [],
      '  <rocksdb><options><max_open_files>64</max_open_files></options></rocksdb>\n',
    );
    expect(file).toBeDefined();
    const xml = await readFile(file!, 'utf8');
    expect(xml).toBe(
      '<clickhouse>\n  <users_config>users.xml</users_config>\n  <rocksdb><options><max_open_files>64</max_open_files></options></rocksdb>\n</clickhouse>\n',
    );
  });

  it('writes no config file without users or extra configuration', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-devcfg-'));
    expect(await writeUsersConfig(dir, [])).toBeUndefined();
  });
});
