import { migration as m0001 } from './0001_slices.ts';
import { migration as m0002 } from './0002_pipeline_objects.ts';
import { migration as m0003 } from './0003_leases.ts';
import { migration as m0004 } from './0004_replays_and_checks.ts';
import { migration as m0005 } from './0005_seen_hash_and_write_time.ts';
import { migration as m0006 } from './0006_slices_deduplication.ts';
import { migration as m0007 } from './0007_slice_refusals.ts';
import { migration as m0008 } from './0008_repairs.ts';
import { migration as m0009 } from './0009_parse_once_and_queue_flush.ts';
import { migration as m0010 } from './0010_lease_release.ts';
import { migration as m0011 } from './0011_refuse_empty_keys.ts';
import { migration as m0012 } from './0012_replay_jobs.ts';
import { migration as m0013 } from './0013_seen_kv.ts';
import { migration as m0014 } from './0014_seen_kv_view.ts';
import { migration as m0015 } from './0015_seen_kv_carried_entry.ts';
import type { WinnowMigration } from './types.ts';

/** Every migration, in order. A database that has run one not listed here is ahead of this code. */
export const migrations: WinnowMigration[] = [
  m0001,
  m0002,
  m0003,
  m0004,
  m0005,
  m0006,
  m0007,
  m0008,
  m0009,
  m0010,
  m0011,
  m0012,
  m0013,
  m0014,
  m0015,
];
export type { MigrationContext, MigrationStatement, WinnowMigration } from './types.ts';
