/**
 * The exact check that ends every fault scenario: the final table against the
 * oracle's rows (I1-I3), staging, dead letters and seen keys against the
 * stream (I4), and `winnow stats --json` reconciled with both.
 */
import { expect } from 'vitest';
import { eventIdOf, expectedRows, sortRows, type FinalRow, type GenMessage } from '../support/oracle.ts';
import { WINDOW_MS } from './common.ts';
import type { Pipeline } from './harness.ts';

/** The exact check of pipeline `p`, as Pipeline.verify documents it. Returns the report line. */
export async function verifyPipeline(
  p: Pipeline,
  scenario: string,
  phases: GenMessage[][],
  note: string,
  refusedKeys: ReadonlySet<string>,
): Promise<string> {
  const all = phases.flat();
  const malformed = all.filter((m) => m.kind === 'malformed').length;
  const valid = all.length - malformed;
  const isRefused = (m: GenMessage): boolean => refusedKeys.has(eventIdOf(m) ?? '');
  const refused = all.filter(isRefused).length;
  const expected = expectedRows(
    phases.map((ph) => ph.filter((m) => !isRefused(m))),
    WINDOW_MS,
  );
  const actual = await p.query<FinalRow>(
    `SELECT toString(event_id) AS event_id, toString(user_id) AS user_id, name, email, toString(created_at) AS created_at FROM ${p.table('users_dedup')}`,
  );
  const { lost, doubled } = diff(expected, actual);
  const [coords] = await p.query<{
    staged: string;
    staged_rows: string;
    errors: string;
    seen: string;
    seen_vs_final: string;
  }>(
    `SELECT
       (SELECT uniqExact(_topic, _partition, _offset) FROM ${p.table(`winnow_${p.name}_staging`)}) AS staged,
       (SELECT count() FROM ${p.table(`winnow_${p.name}_staging`)}) AS staged_rows,
       (SELECT uniqExact(_topic, _partition, _offset) FROM ${p.table(`winnow_${p.name}_errors`)}) AS errors,
       (SELECT count() FROM ${p.table(`winnow_${p.name}_seen`)}) AS seen,
       (SELECT count() FROM (
          SELECT event_id FROM (
            SELECT event_id, toInt64(count()) AS n FROM ${p.table(`winnow_${p.name}_seen`)} GROUP BY event_id
            UNION ALL
            SELECT event_id, -toInt64(count()) AS n FROM ${p.table('users_dedup')} GROUP BY event_id)
          GROUP BY event_id HAVING sum(n) != 0)) AS seen_vs_final`,
  );
  const s = await p.statsFromCli();
  const redelivered = Number(coords?.staged_rows) - Number(coords?.staged);
  const line =
    `fault ${scenario}: ${all.length} events (${valid} valid, ${malformed} malformed), ${expected.length} kept, ` +
    `${valid - expected.length - refused} dropped, ${malformed + refused} dead letters (${refused} refused by the final table), ${lost} lost, ${doubled} doubled; ` +
    `stats inserted ${s.inserted} + duplicates ${s.duplicatesDropped} = ${s.inserted + s.duplicatesDropped} of ${valid} valid, ` +
    `dead letters ${s.deadLetters}` +
    (redelivered > 0 ? `; ${redelivered} re-delivered rows in staging` : '') +
    (note ? `; ${note}` : '');
  // The line first, so a failing scenario reports its numbers too.
  process.stderr.write(`${line}\n`);

  // Kafka holds exactly the stream (no unacknowledged, no doubled send).
  expect(await p.kafkaMessageCount(), 'messages in Kafka').toBe(all.length);
  // I1-I3: exactly the oracle's rows, 0 lost, 0 doubled.
  expect({ lost, doubled }, `${scenario}: final table vs oracle`).toEqual({ lost: 0, doubled: 0 });
  expect(sortRows(actual)).toEqual(sortRows(expected));
  // I4: every valid message staged, every malformed one dead-lettered, the seen keys are the final rows' keys.
  expect(Number(coords?.staged), 'distinct staged coordinates').toBe(valid);
  expect(Number(coords?.errors), 'distinct dead-letter coordinates').toBe(malformed + refused);
  expect(Number(coords?.seen), 'seen keys').toBe(expected.length);
  expect(Number(coords?.seen_vs_final), 'keys whose seen count differs from their final count').toBe(0);
  // The counts as `winnow stats --json` reports them reconcile with the oracle.
  expect(s, `${scenario}: winnow stats`).toMatchObject({
    messagesConsumed: all.length,
    staged: valid,
    inserted: expected.length,
    duplicatesDropped: valid - expected.length - refused,
    deadLetters: malformed + refused,
    refusedByFinal: refused,
    pendingRows: 0,
  });
  return line;
}

/** Multiset difference of final rows: rows the oracle wants and the table lacks, rows the table has too often or at all wrongly. */
export function diff(expected: FinalRow[], actual: FinalRow[]): { lost: number; doubled: number } {
  const k = (r: FinalRow): string => `${r.event_id}|${r.user_id}|${r.name}|${r.email}|${r.created_at}`;
  const want = new Map<string, number>();
  for (const r of expected) want.set(k(r), (want.get(k(r)) ?? 0) + 1);
  let doubled = 0;
  for (const r of actual) {
    const n = want.get(k(r)) ?? 0;
    if (n > 0) want.set(k(r), n - 1);
    else doubled++;
  }
  const lost = [...want.values()].reduce((a, b) => a + b, 0);
  return { lost, doubled };
}
