/**
 * The checker's Kafka part: per partition, the consumer group's committed
 * offset vs what staging and the dead letters hold. Gaps are classified by
 * reading Kafka at those offsets (transaction markers and compaction leave no
 * record: legitimate; an empty message, which the Kafka engine skips, becomes
 * a dead letter; anything else is lost). An incremental check compares only
 * the offsets above those an earlier consistent check compared.
 */
import type { Kafka } from 'kafkajs';
import type { Db } from '../clickhouse/client.ts';
import { qualified } from '../clickhouse/sql.ts';
import type { PipelineConfig } from '../config/schema.ts';
import { describeError } from '../errors.ts';
import { fetchRange } from '../kafka/fetch.ts';
import type { PartitionOffsets } from '../kafka/offsets.ts';
import type { CheckScope } from './check-scope.ts';
import { deadLetterEmpty } from './deadletters.ts';
import { objectNames } from '../provisioning/objects.ts';

export interface PartitionCheck {
  topic: string;
  partition: number;
  committed: number | null;
  firstConsumed: number | null;
  /** offsets below this were compared (one past the highest staged or dead-lettered); the next check starts here */
  checkedTo: number | null;
  gapOffsets: number;
  legitimate: number;
  emptyDeadLettered: number;
  lost: number[];
}

export interface OffsetsReport {
  ok: boolean;
  checked: boolean;
  error: string | null;
  partitions: PartitionCheck[];
}

export interface CheckerKafka {
  client: Kafka;
  offsets: () => Promise<PartitionOffsets[]>;
}

const MAX_GAP_OFFSETS = 2_000;

/**
 * Gaps among the offsets staged or dead-lettered in [from, committed). From 0
 * (a full check) the first consumed offset starts the run; from an earlier
 * check's committed offset, that offset itself must be there.
 */
export function gapsSql(p: PipelineConfig, fromStart: boolean): string {
  const n = objectNames(p);
  const q = (t: string): string => qualified(n.database, t);
  const first = fromStart ? 'o' : 'toUInt64({f:UInt64} - 1)';
  const where = `_topic = {t:String} AND _partition = {p:UInt32} AND _offset >= {f:UInt64} AND _offset < {c:UInt64}`;
  return `SELECT min(o) OVER () AS first, prev + 1 AS a, o - 1 AS b, o AS last FROM (
     SELECT o, lagInFrame(o, 1, ${first}) OVER (ORDER BY o ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS prev FROM (
       SELECT DISTINCT _offset AS o FROM (
         SELECT _offset FROM ${q(n.staging)} WHERE ${where}
         UNION ALL
         SELECT _offset FROM ${q(n.errors)} WHERE ${where})))
   ORDER BY o`;
}

export async function checkOffsets(
  db: Db,
  p: PipelineConfig,
  kafka: CheckerKafka | undefined,
  scope: CheckScope,
  repair: boolean,
): Promise<OffsetsReport> {
  if (!kafka) return { ok: true, checked: false, error: 'Kafka not consulted', partitions: [] };
  let kafkaOffsets: PartitionOffsets[];
  try {
    kafkaOffsets = await kafka.offsets();
  } catch (err) {
    return { ok: true, checked: false, error: `Kafka unreachable: ${describeError(err)}`, partitions: [] };
  }
  const partitions: PartitionCheck[] = [];
  let budget = MAX_GAP_OFFSETS;
  for (const k of kafkaOffsets) {
    const pc: PartitionCheck = {
      topic: k.topic,
      partition: k.partition,
      committed: k.committed,
      firstConsumed: null,
      checkedTo: null,
      gapOffsets: 0,
      legitimate: 0,
      emptyDeadLettered: 0,
      lost: [],
    };
    partitions.push(pc);
    if (k.committed === null) continue;
    const earlier = scope.offsetsFrom.get(`${k.topic}/${k.partition}`);
    // A committed offset that went back (the group was rewound for a replay): compare from the start again.
    const from = earlier && earlier.from <= k.committed ? earlier.from : 0;
    const gaps = await db.rows<{ first: string; a: string; b: string; last: string }>(gapsSql(p, from === 0), {
      t: k.topic,
      p: k.partition,
      f: from,
      c: k.committed,
    });
    // Not the committed offset: offsets missing just below it show as a gap only once a later one is there.
    pc.checkedTo = gaps.length > 0 ? Number(gaps[gaps.length - 1]?.last) + 1 : from;
    pc.firstConsumed = from > 0 ? (earlier?.firstConsumed ?? null) : gaps[0] ? Number(gaps[0].first) : null;
    for (const g of gaps) {
      const a = Number(g.a);
      const b = Number(g.b);
      if (b < a) continue;
      pc.gapOffsets += b - a + 1;
      if (budget <= 0) continue;
      const to = Math.min(b, a + budget - 1);
      budget -= to - a + 1;
      const records = await fetchRange(kafka.client, k.topic, k.partition, a, to);
      const found = new Set(records.map((r) => r.offset));
      pc.legitimate += to - a + 1 - found.size;
      for (const r of records) {
        if (!r.value || r.value.length === 0) {
          if (repair) await deadLetterEmpty(db, p, k.topic, k.partition, r.offset, r.timestamp);
          pc.emptyDeadLettered++;
        } else pc.lost.push(r.offset);
      }
    }
  }
  return { ok: partitions.every((x) => x.lost.length === 0), checked: true, error: null, partitions };
}
