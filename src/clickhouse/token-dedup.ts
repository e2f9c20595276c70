/**
 * Writes that rely on `insert_deduplication_token` (slice inserts, replays,
 * repairs, dead-letter re-ingest, lease claims, checkpoints) must never run
 * with their deduplication silently off. ClickHouse 26.2+ turns it off for an
 * `INSERT ... SELECT` it judges "not stable" unless told otherwise, and user
 * profiles can turn it off too; these settings make every such write either
 * deduplicate or fail.
 *
 * A token alone is not enough for `INSERT ... SELECT`: ClickHouse names each
 * inserted block after the token AND the numbers of the source chunks the
 * SELECT handed over. A SELECT that emits its rows in a different number of
 * chunks on a re-run (timing, threads, part layout, block size) gets other
 * block ids and is written twice. So every token-reliant SELECT ends in
 * `ORDER BY ALL` (its chunks then depend on its rows and `max_block_size`
 * alone), pins `max_block_size`, and runs with `deduplicate_insert_select =
 * 'force_enable'`, which throws rather than insert an unsorted SELECT
 * undeduplicated, whether or not the server carries ClickHouse PR #99206.
 */
import type { ClickHouseSettings } from '@clickhouse/client';

/** For token-deduplicated `INSERT ... VALUES` / `FORMAT` (one block by construction). */
export const TOKEN_INSERT_SETTINGS: ClickHouseSettings = {
  insert_deduplicate: 1,
  // 26.2+: overrides insert_deduplicate; 'enable' whatever the user's profile says.
  deduplicate_insert: 'enable',
  deduplicate_blocks_in_dependent_materialized_views: 1,
};

/** Rows per chunk of a sorted token-reliant SELECT; fixed so a server profile cannot change block ids between runs. */
export const STABLE_MAX_BLOCK_SIZE = 65_409;

/** For token-deduplicated `INSERT ... SELECT ... ORDER BY ALL`. */
export const TOKEN_INSERT_SELECT_SETTINGS: ClickHouseSettings = {
  ...TOKEN_INSERT_SETTINGS,
  // Throws DEDUPLICATION_IS_NOT_POSSIBLE unless the SELECT ends in ORDER BY ALL (and runs as one stream there).
  deduplicate_insert_select: 'force_enable',
  max_block_size: String(STABLE_MAX_BLOCK_SIZE),
};

/** The settings of a token-reliant `INSERT ... SELECT`: its token plus the above. */
export function tokenInsertSelect(token: string): ClickHouseSettings {
  return { ...TOKEN_INSERT_SELECT_SETTINGS, insert_deduplication_token: token };
}

/** The settings of a token-reliant `INSERT ... VALUES`. */
export function tokenInsert(token: string): ClickHouseSettings {
  return { ...TOKEN_INSERT_SETTINGS, insert_deduplication_token: token };
}

/**
 * For an `INSERT ... SELECT` that deliberately relies on no token (staging
 * absorbs repeated Kafka coordinates by design): deduplication explicitly
 * off, so the server does not log it as silently disabled.
 */
export const UNTOKENED_INSERT_SELECT: ClickHouseSettings = { deduplicate_insert_select: 'disable' };
