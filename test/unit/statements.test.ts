/**
 * Why one file over 300 lines: every statement rendered against one hostile fixture; the point is that none is missed.
 *
 * Every statement winnow builds without a server, rendered for a pipeline
 * whose identifiers are hostile but valid (reserved words, mixed case, digits)
 * and whose key is composite: every identifier from the configuration must be
 * back-quoted, every other configured text must sit in a string literal or go
 * as a query parameter, and every `{name:Type}` must have its parameter.
 * Then the DDL and the slice insert of a reference pipeline, as snapshot files
 * (__snapshots__/ddl.sql, slice_insert.sql): every change to them shows in review.
 * `npx vitest run --project unit -u` rewrites the snapshot after an intended change.
 */
import { describe, expect, it } from 'vitest';
import { qualified, type ParamSql } from '../../src/clickhouse/sql.ts';
import { validateConfig, type PipelineConfig } from '../../src/config/index.ts';
import { gapsSql } from '../../src/operations/check-offsets.ts';
import { seenScopeSql, type CheckScope } from '../../src/operations/check-scope.ts';
import {
  completenessSql,
  countOfSql,
  dropSeenPartitionSql,
  expiredSeenPartitionsSql,
  finalRowsSql,
  fromStagingSql,
  keptNotInFinalSql,
  orphanSql,
  reinsertFinalSql,
  restoreSeenSql,
  scopeProofSql,
  uniquenessSql,
} from '../../src/operations/check-sql.ts';
import { checksSql } from '../../src/operations/checker.ts';
import {
  deadLetterCountsSql,
  deadLetterListSql,
  deadLetterReasonsSql,
  emptyDeadLetterSql,
  forgetRefusedSql,
  replaySelectionSql,
} from '../../src/operations/deadletters.ts';
import * as repairSql from '../../src/operations/repair-sql.ts';
import { historySql } from '../../src/operations/history.ts';
import {
  compactIndexSql,
  indexEntriesSql,
  indexSizeSql,
  passLagCountSql,
  rebuildPassSql,
  seenPartitionsSql,
  seenRowsSql,
  truncateIndexSql,
} from '../../src/operations/index-rebuild.ts';
import { replayStagingSql, replaysSql } from '../../src/operations/replay.ts';
import { replayJobsSql, type ReplayJob } from '../../src/operations/replay-jobs.ts';
import { oldestPendingSql, pipelineStats, stagedPerPartitionSql } from '../../src/operations/stats.ts';
import { oldestEventSql } from '../../src/slicing/event-time.ts';
import { grantQueries } from '../../src/provisioning/grants.ts';
import { downStatements, latestStatements, type Statement } from '../../src/provisioning/objects.ts';
import { slicesSql, type SliceRecord } from '../../src/slicing/checkpoints.ts';
import { assertTokenDeduplication } from '../../src/slicing/dedup-guard.ts';
import {
  dropSliceSeenSql,
  refusedCoordinatesSql,
  refusedDeadLetterSql,
  restoreRefusedIndexSql,
  sliceSeenCountSql,
} from '../../src/slicing/rejections.ts';
import {
  keptCountSql,
  rangesCondition,
  sliceInsertSettings,
  sliceInsertSql,
  stagedCountSql,
  stagedHeadsSql,
  type SliceRange,
} from '../../src/slicing/slice.ts';
import { privilegesGranted, privilegesOf, recordingDb } from '../support/privileges.ts';

function pipeline(doc: Record<string, unknown>): PipelineConfig {
  const p = validateConfig({ pipelines: [doc] }, 'test', {}).pipelines[0];
  if (!p) throw new Error('no pipeline');
  return p;
}

/** Identifiers a careless `${name}` would leave bare: SQL keywords as names, mixed case, digits. */
const HOSTILE = {
  database: 'Where',
  table: 'Table_1',
  columns: ['select', 'From', 'order_2', 'Group', 'x1'],
  key: ['select', 'From'],
};
/** Configured text that is not an identifier: only in string literals or parameters. */
const TEXTS = ['Orders.v2', 'Other-topic', 'kafka-1', 'grp.From-1', 'sasl_User', 'pa$$ word'];

const hostile = pipeline({
  name: 'select_2',
  source: {
    brokers: ['kafka-1:9093'],
    topics: ['Orders.v2', 'Other-topic'],
    consumerGroup: 'grp.From-1',
    auth: { protocol: 'SASL_PLAINTEXT', mechanism: 'PLAIN', username: 'sasl_User', password: 'pa$$ word' },
  },
  columns: [
    { name: 'select', type: 'UUID' },
    { name: 'From', type: 'String', path: 'from.id' },
    { name: 'order_2', type: "DateTime64(3, 'UTC')" },
    { name: 'Group', type: 'Nullable(String)', optional: true },
    { name: 'x1', type: 'Array(UInt32)', optional: true },
  ],
  dedup: { key: HOSTILE.key, window: '90m', time: { column: 'order_2' } },
  sink: {
    database: HOSTILE.database,
    table: HOSTILE.table,
    orderBy: ['From', 'select'],
    partitionBy: 'toYYYYMM(`order_2`)',
  },
});

/**
 * The SQL outside string literals, back-quoted identifiers, comments and
 * `{name:Type}` parameters; throws on an unterminated literal or identifier.
 */
function bare(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length;) {
    const c = sql[i] as string;
    if (c === "'" || c === '`') {
      let j = i + 1;
      while (j < sql.length && sql[j] !== c) j += sql[j] === '\\' ? 2 : 1;
      if (j >= sql.length) throw new Error(`unterminated ${c} at ${i}: ${sql.slice(i, i + 60)}`);
      out += ' ';
      i = j + 1;
    } else if (c === '-' && sql[i + 1] === '-') {
      // A comment runs nothing (and may hold an apostrophe): skipped to the end of its line.
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end;
    } else {
      out += c;
      i++;
    }
  }
  return out.replace(/\{\w+:[^{}]+\}/g, ' ');
}

const word = (name: string): RegExp =>
  new RegExp(`(?<![A-Za-z0-9_$.])${name.replace(/[.$]/g, '\\$&')}(?![A-Za-z0-9_])`);

function expectSafe(what: string, sql: string, params: Record<string, unknown> = {}): void {
  const outside = bare(sql);
  for (const name of [HOSTILE.database, HOSTILE.table, ...HOSTILE.columns]) {
    expect(outside, `${what}: identifier ${name} outside back quotes`).not.toMatch(word(name));
  }
  for (const text of TEXTS) expect(outside, `${what}: "${text}" outside a string literal`).not.toContain(text);
  expect(sql, `${what}: a template placeholder left`).not.toMatch(/\{\{/);
  for (const m of sql.matchAll(/\{(\w+):[^{}]+\}/g))
    expect(params, `${what}: no value for parameter ${m[1]}`).toHaveProperty(m[1] as string);
}

const ranges: SliceRange[] = [
  { topic: 'Orders.v2', partition: 0, fromOffset: 10, toOffset: 19 },
  { topic: 'Other-topic', partition: 3, fromOffset: 0, toOffset: 4 },
];
const scope: CheckScope = {
  mode: 'incremental',
  fromSeq: 1,
  toSeq: 2,
  slices: 1,
  replayChunks: 0,
  startedAt: '2026-11-30 00:00:00.000',
  ranges,
  offsetsFrom: new Map(),
};
const record: SliceRecord = {
  pipeline: hostile.name,
  seq: 3,
  sliceId: 'select_2-3-abc',
  status: 'committed',
  ranges,
  nextOffsets: [{ topic: 'Orders.v2', partition: 0, offset: 20 }],
  rowsIn: 15,
  inserted: 12,
  duplicates: 3,
  rejected: 0,
  plannedAt: '2026-11-30T00:00:00Z',
  committedAt: '2026-11-30T00:00:01Z',
  durationMs: 12,
};

/** Every runtime statement built without a server, by name. */
function runtimeStatements(p: PipelineConfig): Record<string, ParamSql> {
  const db = p.sink.database;
  const job: ReplayJob = {
    pipeline: p.name,
    jobId: 'replay-1-0a',
    rev: 2,
    kind: 'replay',
    state: 'running',
    request: { kind: 'replay', from: { kind: 'timestamp', ms: 0 }, fingerprint: 'f' },
    requestedBy: "cli:h'1",
    requestedAtMs: 0,
    holder: 'vm:1:a',
    attempt: 1,
    plan: {},
    chunksDone: 0,
    chunksTotal: 3,
    offsetsDone: 0,
    offsetsTotal: 30,
    rowsIn: 0,
    inserted: 0,
    result: null,
    error: '',
    updatedAt: '',
  };
  const seenScope = seenScopeSql(p, scope);
  const missing = keptNotInFinalSql(p, seenScope);
  const fromStaging = fromStagingSql(p, ranges, missing);
  const orphan = orphanSql(p, ranges);
  const refused = refusedDeadLetterSql(p, ranges, "it's refused");
  const replay = replaySelectionSql(p, [
    { topic: 'Orders.v2', partition: 0, offset: 7 },
    { topic: undefined, partition: 1, offset: 8 },
  ]);
  const replayAll = replaySelectionSql(p, 'all');
  const sql = (s: string): ParamSql => ({ sql: s, params: {} });
  const withParams = (s: string, params: Record<string, unknown>): ParamSql => ({ sql: s, params });
  return {
    'slice insert': sliceInsertSql(p, 'select_2-3-abc', ranges),
    'slice: staged count': stagedCountSql(p, ranges),
    'slice: kept count': keptCountSql(p, 'select_2-3-abc', ranges),
    'slice: oldest Kafka timestamp': oldestEventSql(p, ranges),
    'slice: staged heads': stagedHeadsSql(p, record.nextOffsets),
    'slice: staged heads, no watermarks': stagedHeadsSql(p, []),
    'slice: ranges condition': rangesCondition(ranges, 's'),
    'refused slice: seen count': sliceSeenCountSql(p, 'select_2-3-abc'),
    'refused slice: drop seen keys': dropSliceSeenSql(p, 'select_2-3-abc', ranges),
    'refused slice: restore index entries': restoreRefusedIndexSql(p, 'select_2-3-abc', ranges),
    'checkpoint: last': slicesSql.last(db, p.name),
    'checkpoint: recent': slicesSql.recent(db, p.name, 50),
    'checkpoint: record': slicesSql.record(db, record),
    'checkpoint: committed head': slicesSql.committedHead(db, p.name),
    'checkpoint: committed next offsets': slicesSql.committedNextOffsets(db, p.name),
    'checkpoint: committed ranges': slicesSql.committedRanges(db, p.name, 1, 2),
    'checkpoint: committed totals': slicesSql.committedTotals(db, p.name),
    'checkpoint: committed rates': slicesSql.committedRates(db, p.name),
    'check: seen scope': seenScope,
    'check: uniqueness': uniquenessSql(p, seenScope),
    'check: completeness': completenessSql(p, ranges),
    'check: kept not in final': missing,
    'check: count of': countOfSql(missing),
    'check: from staging': fromStaging,
    'check: re-insert final rows': reinsertFinalSql(p, fromStaging),
    'check: orphans': orphan,
    'check: restore seen keys': restoreSeenSql(p, orphan),
    'check: scope proof': scopeProofSql(p, ranges),
    'check: final rows': finalRowsSql(p),
    'check: expired seen partitions': expiredSeenPartitionsSql(p),
    'check: drop seen partition': sql(dropSeenPartitionSql(p, "2026'11")),
    'check: offset gaps from start': withParams(gapsSql(p, true), { t: '', p: 0, f: 0, c: 1 }),
    'check: offset gaps from a check': withParams(gapsSql(p, false), { t: '', p: 0, f: 0, c: 1 }),
    'checks: record': checksSql.record(db, p.name, true, '{}'),
    'checks: latest': checksSql.latest(db, p.name, false),
    'checks: latest consistent': checksSql.latest(db, p.name, true),
    'checks: last full': checksSql.lastFull(db, p.name),
    'checks: recent': checksSql.recent(db, p.name, 10),
    'index rebuild: seen rows': sql(seenRowsSql(p)),
    'index rebuild: empty the index': sql(truncateIndexSql(p)),
    'index rebuild: partitions': sql(seenPartitionsSql(p)),
    'index rebuild: pass': rebuildPassSql(p, {
      partition: { id: '1796083200', from: '2026-12-01 00:00:00.000', rows: 3 },
      range: 1,
      ranges: 3,
    }),
    'index rebuild: compact the index': sql(compactIndexSql(p)),
    'index rebuild: verify a pass': passLagCountSql(p, 1, 3),
    'index rebuild: index size': indexSizeSql(p),
    'index rebuild: count the entries': sql(indexEntriesSql(p)),
    'history: slices': historySql.slices(db, p.name, 60),
    'history: arrivals': historySql.arrivals(p, 60),
    'repair: doubled summary': repairSql.doubledSummarySql(p, seenScope),
    'repair: save seen keys': repairSql.saveSeenSql(p, seenScope, 'r1'),
    'repair: save final rows': repairSql.saveFinalSql(p, 'r1'),
    'repair: saved keys': repairSql.savedKeysSql(p, 'r1'),
    'repair: saved surplus, final': repairSql.savedSurplusSql(p, 'final', 'r1'),
    'repair: saved surplus, seen': repairSql.savedSurplusSql(p, 'seen', 'r1'),
    'repair: state, final': repairSql.reconcileStateSql(p, 'final', 'r1'),
    'repair: state, seen': repairSql.reconcileStateSql(p, 'seen', 'r1'),
    'repair: log deleting': repairSql.logDeletingSql(p, 'r1', 1, 5),
    'repair: logged deleting': repairSql.loggedDeletingSql(p, 'r1', 1),
    'repair: delete extra, final': repairSql.deleteExtraSql(p, 'final', 'r1', 1),
    'repair: delete extra, seen': repairSql.deleteExtraSql(p, 'seen', 'r1', 1),
    'repair: restore, final': repairSql.restoreSql(p, 'final', 'r1'),
    'repair: restore, seen': repairSql.restoreSql(p, 'seen', 'r1'),
    'repair: log step': repairSql.logStepSql(p, {
      repairId: 'r1',
      step: 'done',
      attempt: 1,
      keys: 1,
      finalRemoved: 1,
      seenRemoved: 1,
      restored: 0,
      note: '',
    }),
    'repair: pending': repairSql.pendingRepairsSql(p),
    'replays: record': replaysSql.record(db, {
      pipeline: p.name,
      replayId: 'replay-1',
      chunk: 1,
      ranges,
      rowsIn: 3,
      inserted: 1,
      reason: 'replay',
    }),
    'replays: ranges since': replaysSql.rangesSince(db, p.name, '2026-11-30 00:00:00.000'),
    'replays: inserted': replaysSql.insertedTotal(db, p.name),
    'replay jobs: write': replayJobsSql.write(db, job),
    'replay jobs: read newest': replayJobsSql.read(db, p.name, job.jobId),
    'replay jobs: read a revision': replayJobsSql.read(db, p.name, job.jobId, 2),
    'replay jobs: next open': replayJobsSql.nextOpen(db, p.name),
    'replay jobs: recent': replayJobsSql.recent(db, p.name, 10),
    'replay: first offsets after a time': replayStagingSql.firstAtOrAfter(p, 0),
    'replay: retained': replayStagingSql.retained(p),
    'replay: highest staged': replayStagingSql.highest(p, 'Orders.v2', 0, 0, 9),
    'replay: detach queue': sql(replayStagingSql.queue(p, 'DETACH')),
    'replay: attach queue': sql(replayStagingSql.queue(p, 'ATTACH')),
    'dead letters: refused coordinates': ((cond: ParamSql) => {
      const q = refusedCoordinatesSql(p, cond.sql);
      return { sql: q.sql, params: { ...cond.params, ...q.params } };
    })(rangesCondition(ranges)),
    'dead letters: counts': deadLetterCountsSql(p),
    'dead letters: list': deadLetterListSql(p, 10),
    'dead letters: reasons': deadLetterReasonsSql(p, 10),
    'dead letters: refused message': refused.insert,
    'dead letters: refused message, staged count': refused.staged,
    'dead letters: empty message': emptyDeadLetterSql(p, 'Orders.v2', 0, 1, 0),
    'dead letters: forget refused': forgetRefusedSql(p, [{ topic: 'Orders.v2', partition: 0, offset: 7 }]),
    ...Object.fromEntries(
      (['refused', 'selected', 'passing', 'stage', 'forget', 'reasons'] as const).flatMap((k) => [
        [`dead-letter replay: ${k}`, withParams(replay[k], replay.params)],
        [`dead-letter replay of all: ${k}`, withParams(replayAll[k], replayAll.params)],
      ]),
    ),
    'stats: staged per partition': stagedPerPartitionSql(p),
    'stats: oldest pending message': oldestPendingSql(p, record.nextOffsets),
    'stats: oldest pending message, no watermarks': oldestPendingSql(p, []),
  };
}

function ddl(p: PipelineConfig, password?: string): Statement[] {
  return [
    ...latestStatements(p, { createFinal: true, ...(password === undefined ? {} : { kafkaPassword: password }) }),
    ...downStatements(p, { dropFinal: true }),
  ];
}

describe('every statement, for hostile but valid identifiers and a composite key', () => {
  it('back-quotes the DDL identifiers and keeps configured text in literals', () => {
    const statements = ddl(hostile, 'pa$$ word');
    expect(statements.length).toBeGreaterThan(20);
    for (const s of statements) {
      expectSafe(s.title, s.sql);
      expectSafe(`${s.title} (display)`, s.display);
      expect(s.display, `${s.title}: the password printed`).not.toContain('pa$$ word');
    }
    const all = statements.map((s) => s.sql).join('\n');
    for (const name of [...HOSTILE.columns, HOSTILE.database, HOSTILE.table]) expect(all).toContain(`\`${name}\``);
    expect(all).toContain('`select`, `From`');
  });

  it('back-quotes the runtime statements and passes every value as a parameter', () => {
    const statements = runtimeStatements(hostile);
    expect(Object.keys(statements).length).toBeGreaterThan(70);
    for (const [what, q] of Object.entries(statements)) {
      expectSafe(what, q.sql, q.params);
      // Not even in a literal: at run time configured values travel as parameters.
      for (const text of TEXTS) expect(q.sql, `${what}: "${text}" in the SQL text`).not.toContain(text);
    }
    // The composite key reaches the slice insert and its counts whole.
    for (const what of ['slice insert', 'slice: kept count', 'check: uniqueness', 'repair: save seen keys'])
      expect(statements[what]?.sql).toContain('`select`, `From`');
  });

  it('finds a bare identifier or a literal left open', () => {
    expect(() => expectSafe('bad', 'SELECT select FROM `Where`.`t`')).toThrow(/identifier select/);
    expect(() => expectSafe('bad', 'SELECT `x` FROM t WHERE _topic = Orders.v2')).toThrow(/Orders\.v2/);
    expect(() => expectSafe('bad', "SELECT 'x")).toThrow(/unterminated/);
    expect(() => expectSafe('bad', "-- the slice's keys\nSELECT From FROM t -- it's")).toThrow(/identifier From/);
    expect(() => expectSafe('bad', 'SELECT {a:String}', {})).toThrow(/parameter a/);
  });
});

describe('the grants of README "Grants" (src/provisioning/grants.ts)', () => {
  /** Entries of runtimeStatements that are conditions other statements embed, not statements. */
  const FRAGMENTS = new Set(['slice: ranges condition', 'check: seen scope']);
  const queue = qualified(hostile.sink.database, `winnow_${hostile.name}_queue`);
  const engineOf = (table: string): string => (table === queue ? 'Kafka' : 'unknown');

  /** Each privilege, with the statements that need it. */
  function needs(statements: [string, string][]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [what, sql] of statements) {
      for (const p of privilegesOf(sql, engineOf)) out.set(p, [...(out.get(p) ?? []), what]);
    }
    return out;
  }

  it('of run are what the runtime statements need: each one needed, none missing', async () => {
    const all = Object.entries(runtimeStatements(hostile)).filter(([what]) => !FRAGMENTS.has(what));
    // `winnow index rebuild` empties and compacts the seen-key index: TRUNCATE and OPTIMIZE of that table,
    // beyond run's grants (README).
    const extra = ['index rebuild: empty the index', 'index rebuild: compact the index'];
    const kv = qualified(hostile.sink.database, `winnow_${hostile.name}_seen_kv`);
    expect(
      Object.fromEntries(needs(all.filter(([what]) => extra.includes(what)).map(([what, q]) => [what, q.sql]))),
    ).toEqual({ [`TRUNCATE ON ${kv}`]: [extra[0]], [`OPTIMIZE ON ${kv}`]: [extra[1]] });
    const statements: [string, string][] = all
      .filter(([what]) => !extra.includes(what))
      .map(([what, q]) => [what, q.sql]);
    // The daemon's start check (dedup-guard.ts), walked without a server: every setting present.
    const db = recordingDb((sql, params) =>
      sql.includes('system.settings') ? (params['names'] as string[]).map((name) => ({ name })) : [],
    );
    await assertTokenDeduplication(db, hostile);
    statements.push(...db.statements.map((sql): [string, string] => ['start check', sql]));
    const needed = needs(statements);
    expect([...needed.keys()].sort()).toEqual(privilegesGranted(grantQueries('run', hostile)).sort());
    expect(needed.get(`DROP TABLE ON ${queue}`)).toEqual(['replay: detach queue']);
    expect(needed.get('SELECT ON system.merge_tree_settings')).toEqual(['start check']);
  });

  it('of read are what stats and the dead-letter list need', async () => {
    const db = recordingDb();
    await pipelineStats(db, hostile, undefined);
    const statements: [string, string][] = [
      ...db.statements.map((sql): [string, string] => ['stats', sql]),
      ['dead letters: list', deadLetterListSql(hostile, 10).sql],
      ['dead letters: counts', deadLetterCountsSql(hostile).sql],
    ];
    expect([...needs(statements).keys()]).toEqual(privilegesGranted(grantQueries('read', hostile)));
  });
});

describe('the DDL of the reference pipeline', () => {
  const reference = pipeline({
    name: 'users',
    source: {
      brokers: ['localhost:9093'],
      topics: ['users'],
      auth: { protocol: 'SASL_PLAINTEXT', mechanism: 'PLAIN', username: 'admin', password: 'admin-secret' },
    },
    columns: [
      { name: 'event_id', type: 'UUID' },
      { name: 'user_id', type: 'UUID' },
      { name: 'name', type: 'String', path: 'user_name' },
      { name: 'email', type: 'String', path: 'user_email' },
      { name: 'created_at', type: 'DateTime', path: 'created_at' },
    ],
    dedup: { key: ['event_id'], window: '1h' },
    sink: { database: 'default', table: 'users_dedup' },
  });

  it('is the committed snapshot (a change to it is a schema change: review it)', async () => {
    const text = ddl(reference, 'admin-secret')
      .map((s) => `-- ${s.title}\n${s.display};\n`)
      .join('\n');
    const header = [
      '-- The DDL winnow renders (src/provisioning/objects.ts) for the reference pipeline of test/unit/statements.test.ts:',
      '-- every object at the latest version (latestStatements), then migrate down --drop-final.',
      '-- Rewritten by `npx vitest run --project unit -u`; a change here is a schema change.',
      '',
    ].join('\n');
    await expect(`${header}\n${text}`).toMatchFileSnapshot('./__snapshots__/ddl.sql');
  });

  it('has the committed slice insert, run with the settings token deduplication relies on', async () => {
    const ins = sliceInsertSql(reference, 'users-7-0123456789ab', [
      { topic: 'users', partition: 0, fromOffset: 100, toOffset: 199 },
      { topic: 'users', partition: 1, fromOffset: 0, toOffset: 49 },
    ]);
    const settings = sliceInsertSettings(reference, 'users-7-0123456789ab');
    // ARCHITECTURE.md, the slice protocol: a sorted SELECT, a pinned block size, deduplication forced, one block.
    expect(settings).toEqual({
      min_insert_block_size_rows: '10000000',
      min_insert_block_size_bytes: '0',
      max_insert_block_size: '10000000',
      insert_deduplicate: 1,
      deduplicate_insert: 'enable',
      deduplicate_blocks_in_dependent_materialized_views: 1,
      deduplicate_insert_select: 'force_enable',
      max_block_size: '65409',
      insert_deduplication_token: 'users-7-0123456789ab',
      use_index_for_in_with_subqueries: 0,
      parallel_view_processing: 1,
      enable_materialized_cte: 1,
      log_comment: 'winnow:slice_insert',
    });
    const text = [
      '-- The slice insert (src/slicing/slice.ts, slice_insert.sql) for the reference pipeline of test/unit/statements.test.ts.',
      '-- Rewritten by `npx vitest run --project unit -u`; review a change against ARCHITECTURE.md, the slice protocol.',
      `-- parameters: ${JSON.stringify(ins.params)}`,
      '',
      `${ins.sql};`,
      '',
    ].join('\n');
    await expect(text).toMatchFileSnapshot('./__snapshots__/slice_insert.sql');
  });
});
