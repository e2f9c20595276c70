/**
 * Why one file over 300 lines: the checker's passes share one scope and one report; its SQL is in check-sql.ts, repairs in repair.ts.
 *
 * The consistency checker: proves I1, I2 and I4 on the live tables and repairs
 * what can be repaired.
 *  - uniqueness: no key kept twice within the window (seen keys);
 *  - doubled slices: a slice that kept rows twice (seen keys (key, __t,
 *    __slice) more than once, identical final rows) loses its surplus copies
 *    (repair.ts: write-ahead, crash-safe);
 *  - completeness: every processed staged key is in the final table;
 *  - seen keys vs final rows, both ways: a kept key missing from the final
 *    table is re-inserted from staging (a loud report when staging no longer
 *    has it); a final row whose seen key is missing gets its key back;
 *  - counts: final rows vs rows inserted by slices and replays;
 *  - Kafka offsets vs staging and dead letters, per partition (check-offsets.ts).
 * By default a check is incremental (check-scope.ts): the keys and offsets of
 * what was processed since the last consistent check; `full` looks at all.
 * An incremental check proves the common case cheaply: when the counts
 * reconcile (every row winnow inserted is in the final table, no more), one
 * pass over the scope's seen keys by key hash shows nothing doubled, nothing
 * kept too close and every staged key kept near its occurrence
 * (check-sql.ts scopeProofSql); then no key is looked up in the final table.
 * Anything either finds sends the check to the exact queries below.
 * It reads without holding up slices; writes (repairs) and the counts, which
 * must not see a slice half-done, go through `lock` (the daemon's exclusive).
 */
import type { Db } from '../clickhouse/client.ts';
import { qualified, type ParamSql } from '../clickhouse/sql.ts';
import { UNTOKENED_INSERT_SELECT } from '../clickhouse/token-dedup.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { checkOffsets, type CheckerKafka, type OffsetsReport } from './check-offsets.ts';
import {
  checkScope,
  scopeSummary,
  seenScopeSql,
  type CheckScope,
  type PriorReport,
  type ScopeSummary,
} from './check-scope.ts';
import { CHECKS_TABLE } from '../provisioning/objects.ts';
import {
  completenessSql,
  countOfSql,
  dropSeenPartitionSql,
  expiredSeenPartitionsSql,
  finalRowsSql,
  fromStagingSql,
  indexLagSql,
  indexRepairSql,
  keptNotInFinalSql,
  orphanSql,
  reinsertFinalSql,
  restoreSeenSql,
  scopeProofSql,
  uniquenessSql,
} from './check-sql.ts';
import { Repairer, type RepairHooks, type RepairOutcome } from './repair.ts';
import { insertedByReplays } from './replay.ts';
import { Checkpoints } from '../slicing/checkpoints.ts';
import type { SliceRange } from '../slicing/slice.ts';

export type { CheckerKafka, PartitionCheck } from './check-offsets.ts';

export interface CheckReport {
  pipeline: string;
  checkedAt: string;
  durationMs: number;
  ok: boolean;
  scope: ScopeSummary;
  uniqueness: { ok: boolean; violations: number; examples: string[] };
  doubled: {
    ok: boolean;
    groups: number;
    keys: number;
    extraSeenCopies: number;
    finalRemoved: number;
    seenRemoved: number;
    repairs: RepairOutcome[];
  };
  completeness: { ok: boolean; missing: number; examples: string[] };
  seenVsFinal: {
    ok: boolean;
    keptNotInFinal: number;
    reinsertedFromStaging: number;
    unrepairable: number;
    finalWithoutSeen: number;
    seenRestored: number;
  };
  counts: { ok: boolean; finalRows: number; insertedBySlices: number; insertedByReplays: number; note: string | null };
  offsets: OffsetsReport;
  /**
   * dedup.index rocksdb (`checked`): every seen key of the scope written
   * within the window has its seen-key index entry, at its latest kept time;
   * missing or older entries are written again (repaired).
   */
  seenIndex: { ok: boolean; checked: boolean; missing: number; repaired: number };
  retention: { droppedSeenPartitions: number };
  /**
   * How completeness and seen keys vs final rows were proved: 'counts' (the
   * counts reconciled and every staged key of the scope has its kept time in
   * the seen keys; no per-key final-table lookup) or 'lookups' (every key in
   * scope looked up in the final table).
   */
  proof: 'counts' | 'lookups';
  /** what each part of the check took */
  stepsMs: Record<string, number>;
}

export interface CheckOptions {
  repair: boolean;
  /** look at everything processed, not only what changed since the last consistent check */
  full?: boolean;
  /** runs fn while no slice runs (the daemon's exclusive); default: at once */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** The statements on winnow_checks (of `database`), one builder each; values go as parameters. */
export const checksSql = {
  record(database: string, pipeline: string, ok: boolean, report: string): ParamSql {
    return {
      sql: `INSERT INTO ${qualified(database, CHECKS_TABLE)} (pipeline, checked_at, ok, report) VALUES ({p:String}, now64(3), {ok:UInt8}, {r:String})`,
      params: { p: pipeline, ok: ok ? 1 : 0, r: report },
    };
  },

  /** The newest report; `consistent` only: the newest that found the pipeline consistent. */
  latest(database: string, pipeline: string, consistent: boolean): ParamSql {
    return {
      sql: `SELECT report FROM ${qualified(database, CHECKS_TABLE)} WHERE pipeline = {p:String}${consistent ? ' AND ok = 1' : ''} ORDER BY checked_at DESC LIMIT 1`,
      params: { p: pipeline },
    };
  },

  /** The newest reports, newest first. */
  recent(database: string, pipeline: string, limit: number): ParamSql {
    return {
      sql: `SELECT report FROM ${qualified(database, CHECKS_TABLE)} WHERE pipeline = {p:String} ORDER BY checked_at DESC LIMIT {limit:UInt32}`,
      params: { p: pipeline, limit },
    };
  },

  lastFull(database: string, pipeline: string): ParamSql {
    return {
      sql: `SELECT toUnixTimestamp64Milli(max(checked_at)) AS at FROM ${qualified(database, CHECKS_TABLE)}
       WHERE pipeline = {p:String} AND JSONExtractString(report, 'scope', 'mode') = 'full'`,
      params: { p: pipeline },
    };
  },
};

/** The seen-keys scope is a key-hash lookup: an index set over it only costs (as in the slice insert). */
const HASH_LOOKUP = { use_index_for_in_with_subqueries: 0 } as const;
/** Candidate sets computed once though read twice (as in the slice insert). */
const CTE = { enable_materialized_cte: 1 } as const;
type Lock = NonNullable<CheckOptions['lock']>;
type Step = <T>(name: string, fn: () => Promise<T>) => Promise<T>;
const sum = (rs: RepairOutcome[], k: 'finalRemoved' | 'seenRemoved'): number => rs.reduce((s, r) => s + r[k], 0);
const NOTHING_MISSING: CheckReport['seenVsFinal'] = {
  ok: true,
  keptNotInFinal: 0,
  reinsertedFromStaging: 0,
  unrepairable: 0,
  finalWithoutSeen: 0,
  seenRestored: 0,
};

export class Checker {
  constructor(
    private readonly db: Db,
    private readonly p: PipelineConfig,
    private readonly kafka?: CheckerKafka,
    private readonly hooks: RepairHooks = {},
  ) {}

  /**
   * Checks, repairs and records the report. An incremental check whose counts
   * do not reconcile (damage outside any slice: rows deleted by hand, say)
   * is taken again in full, which finds and repairs what the counts only show.
   */
  async run(opts: CheckOptions = { repair: true }): Promise<CheckReport> {
    const started = Date.now();
    let report = await this.evaluate(opts, opts.full ?? false);
    if (report.scope.mode === 'incremental' && !report.counts.ok) report = await this.evaluate(opts, true);
    report.durationMs = Date.now() - started;
    const q = checksSql.record(this.p.sink.database, this.p.name, report.ok, JSON.stringify(report));
    await this.db.command(q.sql, q.params);
    return report;
  }

  private async evaluate(opts: CheckOptions, full: boolean): Promise<CheckReport> {
    const started = Date.now();
    const stepsMs: Record<string, number> = {};
    const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = Date.now();
      try {
        return await fn();
      } finally {
        stepsMs[name] = (stepsMs[name] ?? 0) + Date.now() - t0;
      }
    };
    const lock = opts.lock ?? (<T>(fn: () => Promise<T>): Promise<T> => fn());
    const scope = await step('scope', async () =>
      checkScope(this.db, this.p, full ? undefined : await Checker.lastConsistent(this.db, this.p)),
    );
    const repairer = new Repairer(this.db, this.p, this.hooks);
    const resumed = opts.repair ? await step('resume', () => lock(() => repairer.resumePending())) : [];
    // The cheap proof first (check-sql.ts); the exact queries only when it finds something, or cannot
    // apply: a full check looks at everything, and an adopted table's rows are not all winnow's to count.
    let proven: CheckReport['counts'] | null = null;
    if (scope.mode === 'incremental' && this.p.sink.mode !== 'adopt') {
      const counts = await step('counts', () => lock(() => this.counts()));
      if (counts.ok && (await step('proof', () => this.scopeProof(scope.ranges)))) proven = counts;
    }
    if (proven) {
      return this.report(started, scope, {
        uniqueness: { ok: true, violations: 0, examples: [] },
        doubled: {
          ok: true,
          groups: 0,
          keys: 0,
          extraSeenCopies: 0,
          finalRemoved: sum(resumed, 'finalRemoved'),
          seenRemoved: sum(resumed, 'seenRemoved'),
          repairs: resumed,
        },
        completeness: { ok: true, missing: 0, examples: [] },
        seenVsFinal: NOTHING_MISSING,
        counts: proven,
        ...(await this.tail(opts, scope, lock, step)),
        proof: 'counts',
        stepsMs,
      });
    }
    const doubled = await step('doubled', () => this.doubled(repairer, resumed, scope, opts.repair, lock));
    const uniqueness = await step('uniqueness', () => this.uniqueness(scope));
    const seenVsFinal = await step('seenVsFinal', () => this.seenVsFinal(scope, opts.repair, lock));
    const completeness = await step('completeness', () => this.completeness(scope.ranges));
    const counts = await step('counts', () => lock(() => this.counts()));
    return this.report(started, scope, {
      uniqueness,
      doubled,
      completeness,
      seenVsFinal,
      counts,
      ...(await this.tail(opts, scope, lock, step)),
      proof: 'lookups',
      stepsMs,
    });
  }

  private report(
    started: number,
    scope: CheckScope,
    r: Omit<CheckReport, 'pipeline' | 'checkedAt' | 'durationMs' | 'ok' | 'scope'>,
  ): CheckReport {
    return {
      pipeline: this.p.name,
      checkedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      ok:
        r.uniqueness.ok &&
        r.doubled.ok &&
        r.completeness.ok &&
        r.seenVsFinal.ok &&
        r.counts.ok &&
        r.offsets.ok &&
        r.seenIndex.ok,
      scope: scopeSummary(scope),
      ...r,
    };
  }

  /** Kafka offsets and seen-key retention, whichever way the rest was proved. */
  private async tail(
    opts: CheckOptions,
    scope: CheckScope,
    lock: Lock,
    step: Step,
  ): Promise<Pick<CheckReport, 'offsets' | 'seenIndex' | 'retention'>> {
    const offsets = await step('offsets', () => checkOffsets(this.db, this.p, this.kafka, scope, opts.repair));
    // After the other repairs: a seen key they restored needs its index entry too.
    const seenIndex = await step('seenIndex', () => this.seenIndex(scope, opts.repair, lock));
    const retention = {
      droppedSeenPartitions: opts.repair ? await step('retention', () => lock(() => this.dropExpiredSeen())) : 0,
    };
    return { offsets, seenIndex, retention };
  }

  /**
   * dedup.index rocksdb: the seen keys of the scope against the seen-key
   * index. Counted without the lock; a count above zero is taken again under
   * it (a slice in flight writes its index entries after its seen keys), and
   * repaired there by writing the entries again (idempotent).
   */
  private async seenIndex(scope: CheckScope, repair: boolean, lock: Lock): Promise<CheckReport['seenIndex']> {
    if (this.p.dedup.index !== 'rocksdb') return { ok: true, checked: false, missing: 0, repaired: 0 };
    const lag = indexLagSql(this.p, seenScopeSql(this.p, scope));
    const count = async (): Promise<number> => {
      const c = countOfSql(lag);
      return Number((await this.db.rows<{ n: string }>(c.sql, c.params, HASH_LOOKUP))[0]?.n ?? 0);
    };
    let missing = await count();
    let repaired = 0;
    if (missing > 0) {
      await lock(async () => {
        missing = await count();
        if (missing === 0 || !repair) return;
        const ins = indexRepairSql(this.p, lag);
        await this.db.command(ins.sql, ins.params, { ...HASH_LOOKUP, ...UNTOKENED_INSERT_SELECT });
        repaired = missing;
      });
    }
    return { ok: missing === repaired, checked: true, missing, repaired };
  }

  /**
   * The cheap proof (scopeProofSql): true when it finds nothing doubled, no
   * key kept twice within the window and no staged key unrepresented. Read
   * without the lock: a slice in flight only adds seen keys, and anything
   * found sends the check to the exact queries, which look again.
   */
  private async scopeProof(ranges: SliceRange[]): Promise<boolean> {
    const q = scopeProofSql(this.p, ranges);
    const rows = await this.db.rows<{ doubledOrTooClose: string; unrepresented: string }>(q.sql, q.params, {
      ...CTE,
      ...HASH_LOOKUP,
    });
    const r = rows[0];
    return r !== undefined && Number(r.doubledOrTooClose) === 0 && Number(r.unrepresented) === 0;
  }

  /**
   * Slices that kept rows twice. Repairs a killed daemon left unfinished go
   * first; found ones are repaired while no slice runs. The other checks then
   * see the repaired tables.
   */
  private async doubled(
    repairer: Repairer,
    resumed: RepairOutcome[],
    scope: CheckScope,
    repair: boolean,
    lock: Lock,
  ): Promise<CheckReport['doubled']> {
    const scoped = seenScopeSql(this.p, scope);
    const repairs = [...resumed];
    const found = await repairer.find(scoped);
    if (repair && found.groups > 0) {
      const r = await lock(() => repairer.repair(scoped));
      if (r) repairs.push(r);
    }
    const left = repair && found.groups > 0 ? await repairer.find(scoped) : found;
    return {
      ok: left.groups === 0,
      groups: found.groups,
      keys: found.keys,
      extraSeenCopies: found.extra,
      finalRemoved: sum(repairs, 'finalRemoved'),
      seenRemoved: sum(repairs, 'seenRemoved'),
      repairs,
    };
  }

  /** I1 on the kept keys: no key kept twice closer than the window (of the keys in scope). */
  private async uniqueness(scope: CheckScope): Promise<CheckReport['uniqueness']> {
    const q = uniquenessSql(this.p, seenScopeSql(this.p, scope));
    const rows = await this.db.rows<{ violations: string; examples: string[] }>(q.sql, q.params, HASH_LOOKUP);
    const violations = Number(rows[0]?.violations ?? 0);
    return { ok: violations === 0, violations, examples: rows[0]?.examples ?? [] };
  }

  /** I2: every processed staged key (of the ranges in scope) is represented in the final table. */
  private async completeness(processed: SliceRange[]): Promise<CheckReport['completeness']> {
    if (processed.length === 0) return { ok: true, missing: 0, examples: [] };
    const q = completenessSql(this.p, processed);
    const rows = await this.db.rows<{ missing: string; examples: string[] }>(q.sql, q.params);
    const missing = Number(rows[0]?.missing ?? 0);
    return { ok: missing === 0, missing, examples: rows[0]?.examples ?? [] };
  }

  /**
   * Seen keys vs final rows, both ways. Counted without the lock; a count
   * above zero is taken again under it (a slice in flight writes its final
   * rows and seen keys side by side, so one may briefly show without the
   * other), and the repair's insert computes its rows under it too.
   */
  private async seenVsFinal(scope: CheckScope, repair: boolean, lock: Lock): Promise<CheckReport['seenVsFinal']> {
    const count = async (q: ParamSql): Promise<number> => {
      const c = countOfSql(q);
      return Number((await this.db.rows<{ n: string }>(c.sql, c.params, CTE))[0]?.n ?? 0);
    };
    const missingSql = keptNotInFinalSql(this.p, seenScopeSql(this.p, scope));
    let keptNotInFinal = await count(missingSql);
    let reinserted = 0;
    if (keptNotInFinal > 0) {
      await lock(async () => {
        keptNotInFinal = await count(missingSql);
        if (keptNotInFinal === 0 || !repair) return;
        const fromStaging = fromStagingSql(this.p, scope.ranges, missingSql);
        reinserted = await count(fromStaging);
        // Counted under the lock, not token-deduplicated: a re-run finds nothing missing any more.
        if (reinserted > 0) {
          const ins = reinsertFinalSql(this.p, fromStaging);
          await this.db.command(ins.sql, ins.params, UNTOKENED_INSERT_SELECT);
        }
      });
    }
    // Recently processed occurrences whose key is in the final table but has no kept time within the window.
    let finalWithoutSeen = 0;
    let restored = 0;
    if (scope.ranges.length > 0) {
      const orphan = orphanSql(this.p, scope.ranges);
      finalWithoutSeen = await count(orphan);
      if (finalWithoutSeen > 0) {
        await lock(async () => {
          finalWithoutSeen = await count(orphan);
          if (finalWithoutSeen === 0 || !repair) return;
          const ins = restoreSeenSql(this.p, orphan);
          await this.db.command(ins.sql, ins.params, { ...CTE, ...UNTOKENED_INSERT_SELECT });
          restored = finalWithoutSeen;
        });
      }
    }
    const unrepairable = keptNotInFinal - reinserted;
    return {
      ok: keptNotInFinal === 0 && finalWithoutSeen === 0,
      keptNotInFinal,
      reinsertedFromStaging: reinserted,
      unrepairable: repair ? unrepairable : 0,
      finalWithoutSeen,
      seenRestored: restored,
    };
  }

  private async counts(): Promise<CheckReport['counts']> {
    const final = finalRowsSql(this.p);
    const [f, slices, byReplays] = await Promise.all([
      this.db.rows<{ n: string }>(final.sql, final.params),
      new Checkpoints(this.db, this.p.sink.database).committedTotals(this.p.name),
      insertedByReplays(this.db, this.p),
    ]);
    const finalRows = Number(f[0]?.n ?? 0);
    const bySlices = slices.inserted;
    const adopted = this.p.sink.mode === 'adopt';
    const match = finalRows === bySlices + byReplays;
    return {
      ok: match || adopted,
      finalRows,
      insertedBySlices: bySlices,
      insertedByReplays: byReplays,
      note: match
        ? null
        : adopted
          ? 'adopted table: rows written by others are not counted'
          : `final table has ${finalRows - bySlices - byReplays} rows more than winnow inserted (negative: fewer)`,
    };
  }

  /** Seen-key partitions whose every key has outlived its TTL (time and write time both): dropped whole (TTL merges are lazy). */
  private async dropExpiredSeen(): Promise<number> {
    const q = expiredSeenPartitionsSql(this.p);
    const parts = await this.db.rows<{ id: string }>(q.sql, q.params);
    for (const p of parts) await this.db.command(dropSeenPartitionSql(this.p, p.id));
    return parts.length;
  }

  /** When the newest full check ran (0: never), so the daemon can run one a day. */
  static async lastFull(db: Db, p: PipelineConfig): Promise<number> {
    const q = checksSql.lastFull(p.sink.database, p.name);
    const rows = await db.rows<{ at: string }>(q.sql, q.params);
    return Number(rows[0]?.at ?? 0);
  }

  static async latest(db: Db, p: PipelineConfig): Promise<CheckReport | null> {
    const q = checksSql.latest(p.sink.database, p.name, false);
    const rows = await db.rows<{ report: string }>(q.sql, q.params);
    return rows[0] ? (JSON.parse(rows[0].report) as CheckReport) : null;
  }

  /** The newest `limit` reports, newest first. */
  static async recent(db: Db, p: PipelineConfig, limit: number): Promise<CheckReport[]> {
    const q = checksSql.recent(p.sink.database, p.name, limit);
    const rows = await db.rows<{ report: string }>(q.sql, q.params);
    return rows.map((r) => JSON.parse(r.report) as CheckReport);
  }

  /** The newest report that found the pipeline consistent: an incremental check starts where it ended. */
  static async lastConsistent(db: Db, p: PipelineConfig): Promise<PriorReport | undefined> {
    const q = checksSql.latest(p.sink.database, p.name, true);
    const rows = await db.rows<{ report: string }>(q.sql, q.params);
    return rows[0] ? (JSON.parse(rows[0].report) as PriorReport) : undefined;
  }
}
