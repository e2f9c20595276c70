/**
 * The consistency checker: proves I1, I2 and I4 on the live tables and repairs
 * what can be repaired.
 *  - uniqueness: no key kept twice within the window (seen keys);
 *  - completeness: every processed staged key is in the final table;
 *  - seen keys vs final rows, both ways: a kept key missing from the final
 *    table is re-inserted from staging (a loud report when staging no longer
 *    has it); a final row whose seen key is missing gets its key back;
 *  - counts: final rows vs rows inserted by slices and replays;
 *  - Kafka offsets vs staging and dead letters, per partition: gaps are
 *    classified by reading Kafka at those offsets (transaction markers and
 *    compaction leave no record: legitimate; an empty message, which the
 *    Kafka engine skips, becomes a dead letter; anything else is lost).
 */
import type { Kafka } from 'kafkajs';
import type { Db } from '../clickhouse/client.ts';
import { ident, qualified, quoteString } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError } from '../errors.ts';
import { fetchRange } from '../kafka/fetch.ts';
import type { PartitionOffsets } from '../kafka/offsets.ts';
import { Checkpoints } from './checkpoints.ts';
import { CHECKS_TABLE, objectNames, REPLAYS_TABLE, seenExpirySql, SLICES_TABLE } from './objects.ts';
import { rangesCondition, type SliceRange } from './slice-sql.ts';

export interface PartitionCheck {
  topic: string;
  partition: number;
  committed: number | null;
  firstConsumed: number | null;
  gapOffsets: number;
  legitimate: number;
  emptyDeadLettered: number;
  lost: number[];
}

export interface CheckReport {
  pipeline: string;
  checkedAt: string;
  durationMs: number;
  ok: boolean;
  uniqueness: { ok: boolean; violations: number; examples: string[] };
  completeness: { ok: boolean; missing: number; examples: string[] };
  seenVsFinal: { ok: boolean; keptNotInFinal: number; reinsertedFromStaging: number; unrepairable: number; finalWithoutSeen: number; seenRestored: number };
  counts: { ok: boolean; finalRows: number; insertedBySlices: number; insertedByReplays: number; note: string | null };
  offsets: { ok: boolean; checked: boolean; error: string | null; partitions: PartitionCheck[] };
  retention: { droppedSeenPartitions: number };
}

const MAX_GAP_OFFSETS = 2_000;

export interface CheckerKafka {
  client: Kafka;
  offsets: () => Promise<PartitionOffsets[]>;
}

export class Checker {
  private readonly n;
  private readonly key: string;
  private readonly W: number;

  constructor(
    private readonly db: Db,
    private readonly p: PipelineConfig,
    private readonly kafka?: CheckerKafka,
  ) {
    this.n = objectNames(p);
    this.key = p.dedup.key.map(ident).join(', ');
    this.W = p.dedup.windowMs;
  }

  private t(name: string): string {
    return qualified(this.n.database, name);
  }

  async run(opts: { repair: boolean } = { repair: true }): Promise<CheckReport> {
    const started = Date.now();
    const last = await new Checkpoints(this.db, this.n.database).last(this.p.name);
    const processed: SliceRange[] = (last?.nextOffsets ?? [])
      .filter((o) => o.offset > 0)
      .map((o) => ({ topic: o.topic, partition: o.partition, fromOffset: 0, toOffset: o.offset - 1 }));
    const uniqueness = await this.uniqueness();
    const seenVsFinal = await this.seenVsFinal(processed, opts.repair);
    const completeness = await this.completeness(processed);
    const counts = await this.counts();
    const offsets = await this.offsets(opts.repair);
    const retention = { droppedSeenPartitions: opts.repair ? await this.dropExpiredSeen() : 0 };
    const report: CheckReport = {
      pipeline: this.p.name,
      checkedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      ok: uniqueness.ok && completeness.ok && seenVsFinal.ok && counts.ok && offsets.ok,
      uniqueness,
      completeness,
      seenVsFinal,
      counts,
      offsets,
      retention,
    };
    await this.db.command(
      `INSERT INTO ${this.t(CHECKS_TABLE)} (pipeline, checked_at, ok, report) VALUES ({p:String}, now64(3), {ok:UInt8}, {r:String})`,
      { p: this.p.name, ok: report.ok ? 1 : 0, r: JSON.stringify(report) },
    );
    return report;
  }

  /** I1 on the kept keys: no key kept twice closer than the window. */
  private async uniqueness(): Promise<CheckReport['uniqueness']> {
    const rows = await this.db.rows<{ violations: string; examples: string[] }>(
      `SELECT count() AS violations, groupArray(10)(k) AS examples FROM (
         SELECT toString(tuple(${this.key})) AS k, arraySort(groupArray(toUnixTimestamp64Milli(\`__t\`))) AS ts
         FROM ${this.t(this.n.seen)}
         WHERE \`__t\` > now64(3) - toIntervalMillisecond({w2:Int64})
         GROUP BY ${this.key}
         HAVING length(ts) > 1 AND arrayExists((a, b) -> b - a < {w:Int64}, arrayPopBack(ts), arrayPopFront(ts)))`,
      { w: this.W, w2: 2 * this.W },
    );
    const violations = Number(rows[0]?.violations ?? 0);
    return { ok: violations === 0, violations, examples: rows[0]?.examples ?? [] };
  }

  /** I2: every processed staged key is represented in the final table. */
  private async completeness(processed: SliceRange[]): Promise<CheckReport['completeness']> {
    if (processed.length === 0) return { ok: true, missing: 0, examples: [] };
    const cond = rangesCondition(processed);
    const rows = await this.db.rows<{ missing: string; examples: string[] }>(
      `SELECT count() AS missing, groupArray(10)(toString(k)) AS examples FROM (
         SELECT DISTINCT tuple(${this.key}) AS k FROM ${this.t(this.n.staging)} WHERE ${cond.sql})
       WHERE k NOT IN (SELECT tuple(${this.key}) FROM ${this.t(this.n.final)})`,
      cond.params,
    );
    const missing = Number(rows[0]?.missing ?? 0);
    return { ok: missing === 0, missing, examples: rows[0]?.examples ?? [] };
  }

  private async seenVsFinal(processed: SliceRange[], repair: boolean): Promise<CheckReport['seenVsFinal']> {
    const cols = this.p.columns.map((c) => ident(c.name)).join(', ');
    const final = this.t(this.n.final);
    const seen = this.t(this.n.seen);
    const staging = this.t(this.n.staging);
    // Kept keys (retained state) with no row in the final table: the write that must never be lost.
    const keptNotInFinalSql = `SELECT ${this.key}, \`__t\` FROM ${seen}
      WHERE tuple(${this.key}) NOT IN (SELECT tuple(${this.key}) FROM ${final} WHERE tuple(${this.key}) IN (SELECT tuple(${this.key}) FROM ${seen}))`;
    const lostRows = await this.db.rows<{ n: string }>(`SELECT count() AS n FROM (${keptNotInFinalSql})`);
    const keptNotInFinal = Number(lostRows[0]?.n ?? 0);
    let reinserted = 0;
    if (keptNotInFinal > 0 && repair) {
      const fromStaging = `SELECT ${cols} FROM ${staging} WHERE tuple(${this.key}, \`__t\`) IN (${keptNotInFinalSql}) LIMIT 1 BY ${this.key}, \`__t\``;
      const cnt = await this.db.rows<{ n: string }>(`SELECT count() AS n FROM (${fromStaging})`);
      reinserted = Number(cnt[0]?.n ?? 0);
      if (reinserted > 0) await this.db.command(`INSERT INTO ${final} (${cols}) ${fromStaging}`);
    }
    // Recently processed occurrences whose key is in the final table but has no kept time within the window.
    let finalWithoutSeen = 0;
    let restored = 0;
    if (processed.length > 0) {
      const cond = rangesCondition(processed);
      const orphanSql = `SELECT ${this.key}, s.t AS \`__t\`, 'repair' AS \`__slice\` FROM (
          SELECT ${this.key}, min(\`__t\`) AS t FROM ${staging}
          WHERE (${cond.sql}) AND \`__t\` > now64(3) - toIntervalMillisecond({w:Int64})
          GROUP BY ${this.key}) AS s
        LEFT JOIN (
          SELECT ${this.key}, groupArray(toUnixTimestamp64Milli(\`__t\`)) AS ts FROM ${seen}
          WHERE tuple(${this.key}) IN (SELECT tuple(${this.key}) FROM ${staging} WHERE ${cond.sql})
          GROUP BY ${this.key}) AS z USING (${this.key})
        WHERE NOT arrayExists(x -> abs(x - toUnixTimestamp64Milli(s.t)) < {w:Int64}, z.ts)
          AND tuple(${this.key}) IN (SELECT tuple(${this.key}) FROM ${final})`;
      const params = { ...cond.params, w: this.W };
      const cnt = await this.db.rows<{ n: string }>(`SELECT count() AS n FROM (${orphanSql})`, params);
      finalWithoutSeen = Number(cnt[0]?.n ?? 0);
      if (finalWithoutSeen > 0 && repair) {
        await this.db.command(`INSERT INTO ${seen} (${this.key}, \`__t\`, \`__slice\`) ${orphanSql}`, params);
        restored = finalWithoutSeen;
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
    const [f, s, r] = await Promise.all([
      this.db.rows<{ n: string }>(`SELECT count() AS n FROM ${this.t(this.n.final)}`),
      this.db.rows<{ n: string }>(`SELECT sum(inserted) AS n FROM ${this.t(SLICES_TABLE)} WHERE pipeline = {p:String} AND status = 'committed'`, { p: this.p.name }),
      this.db.rows<{ n: string }>(`SELECT sum(inserted) AS n FROM ${this.t(REPLAYS_TABLE)} WHERE pipeline = {p:String}`, { p: this.p.name }),
    ]);
    const finalRows = Number(f[0]?.n ?? 0);
    const bySlices = Number(s[0]?.n ?? 0);
    const byReplays = Number(r[0]?.n ?? 0);
    const adopted = this.p.sink.mode === 'adopt';
    const match = finalRows === bySlices + byReplays;
    return {
      ok: match || adopted,
      finalRows,
      insertedBySlices: bySlices,
      insertedByReplays: byReplays,
      note: match ? null : adopted ? 'adopted table: rows written by others are not counted' : `final table has ${finalRows - bySlices - byReplays} rows more than winnow inserted (negative: fewer)`,
    };
  }

  private async offsets(repair: boolean): Promise<CheckReport['offsets']> {
    if (!this.kafka) return { ok: true, checked: false, error: 'Kafka not consulted', partitions: [] };
    let kafkaOffsets: PartitionOffsets[];
    try {
      kafkaOffsets = await this.kafka.offsets();
    } catch (err) {
      return { ok: true, checked: false, error: `Kafka unreachable: ${describeError(err)}`, partitions: [] };
    }
    const partitions: PartitionCheck[] = [];
    let budget = MAX_GAP_OFFSETS;
    for (const k of kafkaOffsets) {
      const pc: PartitionCheck = { topic: k.topic, partition: k.partition, committed: k.committed, firstConsumed: null, gapOffsets: 0, legitimate: 0, emptyDeadLettered: 0, lost: [] };
      partitions.push(pc);
      if (k.committed === null) continue;
      const gaps = await this.db.rows<{ first: string; a: string; b: string }>(
        `SELECT min(o) OVER () AS first, prev + 1 AS a, o - 1 AS b FROM (
           SELECT o, lagInFrame(o, 1, o) OVER (ORDER BY o ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev FROM (
             SELECT DISTINCT _offset AS o FROM (
               SELECT _offset FROM ${this.t(this.n.staging)} WHERE _topic = {t:String} AND _partition = {p:UInt32} AND _offset < {c:UInt64}
               UNION ALL
               SELECT _offset FROM ${this.t(this.n.errors)} WHERE _topic = {t:String} AND _partition = {p:UInt32} AND _offset < {c:UInt64})))
         ORDER BY o`,
        { t: k.topic, p: k.partition, c: k.committed },
      );
      pc.firstConsumed = gaps[0] ? Number(gaps[0].first) : null;
      for (const g of gaps) {
        const a = Number(g.a);
        const b = Number(g.b);
        if (b < a) continue;
        pc.gapOffsets += b - a + 1;
        if (budget <= 0) continue;
        const to = Math.min(b, a + budget - 1);
        budget -= to - a + 1;
        const records = await fetchRange(this.kafka.client, k.topic, k.partition, a, to);
        const found = new Set(records.map((r) => r.offset));
        pc.legitimate += to - a + 1 - found.size;
        for (const r of records) {
          if (!r.value || r.value.length === 0) {
            if (repair) await this.deadLetterEmpty(k.topic, k.partition, r.offset, r.timestamp);
            pc.emptyDeadLettered++;
          } else pc.lost.push(r.offset);
        }
      }
    }
    return { ok: partitions.every((x) => x.lost.length === 0), checked: true, error: null, partitions };
  }

  private async deadLetterEmpty(topic: string, partition: number, offset: number, timestamp: number): Promise<void> {
    await this.db.command(
      `INSERT INTO ${this.t(this.n.errors)} (_raw, __error, _topic, _partition, _offset, _timestamp_ms, _ingested_at)
       VALUES ('', 'empty message (the Kafka engine skips it; recorded by the checker)', {t:String}, {p:UInt32}, {o:UInt64}, fromUnixTimestamp64Milli({ts:Int64}), now64(3))`,
      { t: topic, p: partition, o: offset, ts: timestamp },
    );
  }

  /** Seen-key partitions whose every key has outlived its TTL (time and write time both): dropped whole (TTL merges are lazy). */
  private async dropExpiredSeen(): Promise<number> {
    const parts = await this.db.rows<{ id: string }>(
      `SELECT _partition_id AS id FROM ${this.t(this.n.seen)} GROUP BY id HAVING max(${seenExpirySql(this.p)}) < now()`,
    );
    for (const p of parts) await this.db.command(`ALTER TABLE ${this.t(this.n.seen)} DROP PARTITION ID ${quoteString(p.id)}`);
    return parts.length;
  }

  static async latest(db: Db, p: PipelineConfig): Promise<CheckReport | null> {
    const rows = await db.rows<{ report: string }>(
      `SELECT report FROM ${qualified(p.sink.database, CHECKS_TABLE)} WHERE pipeline = {p:String} ORDER BY checked_at DESC LIMIT 1`,
      { p: p.name },
    );
    return rows[0] ? (JSON.parse(rows[0].report) as CheckReport) : null;
  }
}
