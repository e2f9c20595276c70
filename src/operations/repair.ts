/**
 * Repairs a slice written twice: the seen keys hold (key, __t, __slice) more
 * than once and the final table identical copies of that row.
 *
 * Crash safety. The repair never rewrites a row; it deletes surplus copies by
 * their physical coordinates (part, offset), and only after:
 *   1. save (write-ahead): one copy of each doubled row value and how many
 *      copies must remain go to winnow_<p>_repair_final/_seen, then the
 *      'saved' step is logged in winnow_repairs;
 *   2. per attempt: the coordinates of the copies beyond what must remain
 *      (the lowest coordinates stay) are logged ('deleting'), then one
 *      lightweight DELETE per table removes exactly those coordinates;
 *      coordinates gone stale (a merge or mutation renamed the part) match
 *      nothing, so a copy that must stay is never touched and at no moment is
 *      a row absent;
 *   3. the table is read again against the saved copies: surplus left ->
 *      another attempt; copies missing (only if something else deleted them)
 *      are re-inserted from the saved copy; then 'done' is logged.
 * Every step re-reads the tables instead of trusting what a dead daemon did,
 * so a repair killed anywhere is finished by the next check (pending repairs
 * go first), and running a step twice changes nothing.
 */
import type { Db } from '../clickhouse/client.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { WinnowError } from '../errors.ts';
import type { ParamSql } from '../clickhouse/sql.ts';
import {
  deleteExtraSql,
  doubledSummarySql,
  logDeletingSql,
  loggedDeletingSql,
  logStepSql,
  pendingRepairsSql,
  reconcileStateSql,
  restoreSql,
  savedKeysSql,
  savedSurplusSql,
  saveFinalSql,
  saveSeenSql,
  type RepairTarget,
} from './repair-sql.ts';
import { UNTOKENED_INSERT_SELECT } from '../clickhouse/token-dedup.ts';

/** Points where the fault tests stop a repair, as a daemon killed there would. */
export interface RepairHooks {
  afterSave?: (repairId: string) => Promise<void> | void;
  afterDelete?: (repairId: string) => Promise<void> | void;
}

export interface DoubledFound {
  groups: number;
  keys: number;
  /** seen-key copies beyond one per group */
  extra: number;
}

export interface RepairOutcome {
  repairId: string;
  keys: number;
  finalRemoved: number;
  seenRemoved: number;
  /** copies re-inserted from the write-ahead copy (0 unless something else deleted them) */
  restored: number;
  /** finished for a repair an earlier check started */
  resumed: boolean;
}

const MAX_ATTEMPTS = 5;
/** The scope is a key-hash lookup in the seen keys: an index set over it only costs (as in the slice insert). */
const HASH_LOOKUP = { use_index_for_in_with_subqueries: 0 } as const;
const DELETE_SETTINGS = { lightweight_deletes_sync: '2', mutations_sync: '2' };

export class Repairer {
  constructor(
    private readonly db: Db,
    private readonly p: PipelineConfig,
    private readonly hooks: RepairHooks = {},
  ) {}

  /** Doubled groups among the seen keys the scope selects (read only; no lock needed). */
  async find(scope: ParamSql): Promise<DoubledFound> {
    const q = doubledSummarySql(this.p, scope);
    const rows = await this.db.rows<{ groups: string; keys: string; extra: string }>(q.sql, q.params, HASH_LOOKUP);
    return {
      groups: Number(rows[0]?.groups ?? 0),
      keys: Number(rows[0]?.keys ?? 0),
      extra: Number(rows[0]?.extra ?? 0),
    };
  }

  /** Saves, then removes, the surplus copies of the doubled groups in scope. Runs while no slice does. */
  async repair(scope: ParamSql): Promise<RepairOutcome | null> {
    const repairId = `${this.p.name}-repair-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const seen = saveSeenSql(this.p, scope, repairId);
    await this.db.command(seen.sql, seen.params, { ...HASH_LOOKUP, ...UNTOKENED_INSERT_SELECT });
    const keys = await this.savedKeys(repairId);
    if (keys === 0) return null; // repaired meanwhile, or never doubled: nothing saved, nothing to do
    const fin = saveFinalSql(this.p, repairId);
    await this.db.command(fin.sql, fin.params, UNTOKENED_INSERT_SELECT);
    // Saved copies without this step are ignored: nothing was deleted yet.
    await this.log({
      repairId,
      step: 'saved',
      attempt: 0,
      keys,
      ...(await this.planned(repairId)),
      restored: 0,
      note: '',
    });
    await this.hooks.afterSave?.(repairId);
    return this.finish(repairId, keys, 0, false);
  }

  /** Finishes repairs a daemon stopped in the middle of (it died, or lost its lease). */
  async resumePending(): Promise<RepairOutcome[]> {
    const q = pendingRepairsSql(this.p);
    const pending = await this.db.rows<{ id: string; attempt: number; keys: string }>(q.sql, q.params);
    const out: RepairOutcome[] = [];
    for (const r of pending) out.push(await this.finish(r.id, Number(r.keys), Number(r.attempt), true));
    return out;
  }

  private async finish(repairId: string, keys: number, lastAttempt: number, resumed: boolean): Promise<RepairOutcome> {
    let restored = 0;
    for (let attempt = lastAttempt + 1; attempt <= lastAttempt + MAX_ATTEMPTS; attempt++) {
      const [fin, seen] = [await this.state(repairId, 'final'), await this.state(repairId, 'seen')];
      restored +=
        (await this.restore(repairId, 'final', fin.missing)) + (await this.restore(repairId, 'seen', seen.missing));
      if (fin.extra === 0 && seen.extra === 0) {
        const planned = await this.planned(repairId);
        await this.log({ repairId, step: 'done', attempt, keys, ...planned, restored, note: resumed ? 'resumed' : '' });
        return { repairId, keys, ...planned, restored, resumed };
      }
      // The coordinates are computed again as they are logged: the delete removes what the log says.
      const log = logDeletingSql(this.p, repairId, attempt, keys);
      await this.db.command(log.sql, log.params, UNTOKENED_INSERT_SELECT);
      const l = loggedDeletingSql(this.p, repairId, attempt);
      const todo = (await this.db.rows<{ final: string; seen: string }>(l.sql, l.params))[0];
      for (const [t, count] of [
        ['final', Number(todo?.final ?? 0)],
        ['seen', Number(todo?.seen ?? 0)],
      ] as const) {
        if (count === 0) continue;
        const d = deleteExtraSql(this.p, t, repairId, attempt);
        await this.db.command(d.sql, d.params, DELETE_SETTINGS);
      }
      await this.hooks.afterDelete?.(repairId);
    }
    throw new WinnowError(
      'REPAIR_INCOMPLETE',
      `pipeline ${this.p.name}: repair ${repairId} still finds surplus copies after ${MAX_ATTEMPTS} attempts`,
      {
        hint: 'parts kept changing under it (merges); the next check continues it',
        retryable: true,
      },
    );
  }

  /** Copies beyond what must remain, and copies missing, of one table. */
  private async state(repairId: string, t: RepairTarget): Promise<{ extra: number; missing: number }> {
    const s = reconcileStateSql(this.p, t, repairId);
    const row = (await this.db.rows<{ extra: string; missing: string }>(s.sql, s.params))[0];
    return { extra: Number(row?.extra ?? 0), missing: Number(row?.missing ?? 0) };
  }

  /** Re-inserts copies missing below what must remain; returns how many. */
  private async restore(repairId: string, t: RepairTarget, missing: number): Promise<number> {
    if (missing === 0) return 0;
    const r = restoreSql(this.p, t, repairId);
    // Counted, not token-deduplicated: a re-run reads the table again and inserts only what is still missing.
    await this.db.command(r.sql, r.params, { insert_deduplicate: 0, ...UNTOKENED_INSERT_SELECT });
    return missing;
  }

  private async savedKeys(repairId: string): Promise<number> {
    const q = savedKeysSql(this.p, repairId);
    const rows = await this.db.rows<{ n: string }>(q.sql, q.params);
    return Number(rows[0]?.n ?? 0);
  }

  /** The copies a repair removes, as saved: found minus what must remain. */
  private async planned(repairId: string): Promise<{ finalRemoved: number; seenRemoved: number }> {
    const sum = async (t: RepairTarget): Promise<number> => {
      const q = savedSurplusSql(this.p, t, repairId);
      const rows = await this.db.rows<{ n: string }>(q.sql, q.params);
      return Number(rows[0]?.n ?? 0);
    };
    return { finalRemoved: await sum('final'), seenRemoved: await sum('seen') };
  }

  private async log(s: Parameters<typeof logStepSql>[1]): Promise<void> {
    const q = logStepSql(this.p, s);
    await this.db.command(q.sql, q.params, UNTOKENED_INSERT_SELECT);
  }
}
