/**
 * The HTTP API's contract: zod schemas for every input and output. Routes
 * declare them (validation and the output guard in zod-provider.ts), and the
 * OpenAPI document is generated from them, so the three cannot drift apart.
 * Schemas registered in `components` become named OpenAPI components.
 */
import { z } from 'zod';
import type { SliceRecord } from '../slicing/checkpoints.ts';
import { HISTORY_MINUTES_MAX } from '../operations/history.ts';
import type {
  CheckSummary,
  DeadLetterOverview,
  PartitionStats,
  PipelineHistory,
  PipelineStats,
  PipelineSummary,
  Readiness,
  ReplayJobStatus,
} from './deps.ts';

export const components = z.registry<{ id: string }>();

const count = z.number().int().nonnegative();
const offset = z.number().int().nonnegative();

// ---- inputs ----------------------------------------------------------------

export const PipelineParams = z.object({
  name: z.string().min(1).describe('the pipeline name from the config file'),
});

export const LIMIT_DEFAULT = 50;
export const LIMIT_MAX = 1000;
const limitMessage = `must be an integer from 1 to ${LIMIT_MAX}`;

export const SlicesQuery = z.strictObject({
  limit: z.coerce
    .number({ error: limitMessage })
    .int({ error: limitMessage })
    .min(1, { error: limitMessage })
    .max(LIMIT_MAX, { error: limitMessage })
    .default(LIMIT_DEFAULT)
    .describe('how many of the newest slices to return'),
});

const minutesMessage = `must be an integer from 1 to ${HISTORY_MINUTES_MAX}`;
export const HistoryQuery = z.strictObject({
  minutes: z.coerce
    .number({ error: minutesMessage })
    .int({ error: minutesMessage })
    .min(1, { error: minutesMessage })
    .max(HISTORY_MINUTES_MAX, { error: minutesMessage })
    .default(60)
    .describe('how many minutes back, one bucket each, the current minute last'),
});

export const RECENT_MAX = 100;
const recentMessage = `must be an integer from 1 to ${RECENT_MAX}`;
export const RecentQuery = z.strictObject({
  limit: z.coerce
    .number({ error: recentMessage })
    .int({ error: recentMessage })
    .min(1, { error: recentMessage })
    .max(RECENT_MAX, { error: recentMessage })
    .default(10)
    .describe('how many of the newest to return'),
});

// ---- outputs ---------------------------------------------------------------

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string().describe('a stable code: NOT_FOUND, USAGE, INTERNAL, ...'),
      message: z.string(),
    }),
  })
  .describe('what went wrong; never a stack trace')
  .register(components, { id: 'Error' });

export const Health = z.object({ status: z.literal('ok') }).register(components, { id: 'Health' });

export const PipelineHealthSchema = z
  .object({
    state: z
      .enum(['starting', 'processing', 'standby', 'failing'])
      .describe(
        'processing: holds the lease and its last attempt succeeded; standby: another daemon holds it; ' +
          'failing: its last lease claim or slice failed (503)',
      ),
    since: z.string().describe('when the pipeline entered this state (ISO time)'),
    holder: z.string().nullable().describe('the lease holder as last read: host, address, pid, API, config, id'),
    holderUntil: z.string().nullable().describe('until when the holder holds the lease, as far as this daemon knows'),
    failures: count.describe('attempts failed in a row'),
    failingSince: z.string().nullable(),
    error: z
      .object({ class: z.string(), message: z.string() })
      .nullable()
      .describe('the last failure, without row values'),
    gaveUpAt: z.string().nullable().describe('when this daemon last gave the lease up because it could not process'),
  })
  .register(components, { id: 'PipelineHealth' });

export const ReadinessSchema = z
  .object({
    ready: z.boolean(),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), error: z.string().optional() })),
    pipelines: z.record(z.string(), PipelineHealthSchema).optional(),
  })
  .describe(
    'every check the daemon needs to do its work, by name; ready (200) when each pipeline is processing ' +
      'or a healthy standby, 503 when one is failing',
  )
  .register(components, { id: 'Readiness' });

export const PipelineSummarySchema = z
  .object({
    name: z.string(),
    topics: z.array(z.string()),
    table: z.string(),
    database: z.string(),
    windowMs: z.number().nonnegative().describe('deduplication window, milliseconds'),
    key: z.array(z.string()).describe('the columns that identify a duplicate'),
  })
  .register(components, { id: 'PipelineSummary' });

export const PipelineList = z
  .object({ pipelines: z.array(PipelineSummarySchema) })
  .register(components, { id: 'PipelineList' });

export const PartitionStatsSchema = z
  .object({
    topic: z.string(),
    partition: z.number().int().nonnegative(),
    nextOffset: offset.describe('the first offset the next slice will take'),
    stagedHigh: offset.nullable().describe('the highest offset staged so far'),
    logEnd: offset.nullable().describe("Kafka's log end offset; null when Kafka is unreachable"),
    consumerOffset: offset.nullable(),
    lag: count.nullable().describe('messages in Kafka not yet in a committed slice'),
    lagSeconds: z
      .number()
      .nonnegative()
      .nullable()
      .describe(
        'seconds since the Kafka timestamp of the oldest staged message not yet in a committed slice; 0 without lag; null when the lagging messages are not staged yet',
      ),
  })
  .register(components, { id: 'PartitionStats' });

export const PipelineStatsSchema = z
  .object({
    name: z.string(),
    messagesConsumed: count.describe('staged + dead letters that never reached staging'),
    staged: count,
    inserted: count,
    duplicatesDropped: count,
    duplicateRatio: z
      .number()
      .min(0)
      .max(1)
      .describe('duplicatesDropped / (inserted + duplicatesDropped); 0 when none'),
    deadLetters: count,
    refusedByFinal: count.describe(
      'staged messages the final table refused (a CHECK constraint, a value its type cannot hold), now dead letters',
    ),
    pendingRows: count.describe('staged but not yet in a committed slice'),
    partitions: z.array(PartitionStatsSchema),
    lastSlice: z
      .object({
        sliceId: z.string(),
        seq: count,
        committedAt: z.string().nullable(),
        durationMs: z.number().nonnegative(),
        rowsIn: count,
        inserted: count,
        duplicates: count,
      })
      .nullable(),
    eventsPerSecond: z.object({ last1m: z.number().nonnegative(), last5m: z.number().nonnegative() }),
    lastError: z.string().nullable().describe("the daemon's most recent failure for this pipeline"),
  })
  .register(components, { id: 'PipelineStats' });

export const SliceRecordSchema = z
  .object({
    pipeline: z.string(),
    seq: count,
    sliceId: z.string(),
    status: z
      .enum(['planned', 'committed', 'split'])
      .describe("split: the final table refused some rows; the next slice is this one's first half"),
    ranges: z.array(
      z.object({ topic: z.string(), partition: z.number().int().nonnegative(), fromOffset: offset, toOffset: offset }),
    ),
    nextOffsets: z.array(z.object({ topic: z.string(), partition: z.number().int().nonnegative(), offset })),
    rowsIn: count,
    inserted: count,
    duplicates: count,
    rejected: count.describe('messages the final table refused, sent to the dead letters'),
    plannedAt: z.string(),
    committedAt: z.string().nullable(),
    durationMs: z.number().nonnegative(),
  })
  .register(components, { id: 'Slice' });

export const SliceList = z
  .object({ slices: z.array(SliceRecordSchema).describe('newest first') })
  .register(components, { id: 'SliceList' });

export const MetricsText = z.string().describe('Prometheus text exposition format 0.0.4');

export const OpenApiDocument = z
  .looseObject({
    openapi: z.literal('3.1.0'),
    info: z.looseObject({ title: z.string(), version: z.string() }),
    paths: z.record(z.string(), z.unknown()),
  })
  .register(components, { id: 'OpenApiDocument' });

// ---- the schemas and the deps interface describe the same shapes -------------

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _summary: Same<z.output<typeof PipelineSummarySchema>, PipelineSummary> = true;
const _partition: Same<z.output<typeof PartitionStatsSchema>, PartitionStats> = true;
const _stats: Same<z.output<typeof PipelineStatsSchema>, PipelineStats> = true;
const _readiness: Same<z.output<typeof ReadinessSchema>, Readiness> = true;
const _slice: Same<z.output<typeof SliceRecordSchema>, SliceRecord> = true;

// ---- consistency and replay ---------------------------------------------------

export const ConsistencyResponse = z
  .object({
    report: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe('the newest checker report (see winnow check --json), null before the first check'),
  })
  .register(components, { id: 'Consistency' });

export const ReplayRequestBody = z
  .strictObject({
    fromTimestamp: z.string().optional().describe('ISO-8601 time or milliseconds since the epoch'),
    fromOffsets: z.string().optional().describe('PARTITION:OFFSET or TOPIC/PARTITION:OFFSET, comma-separated'),
    to: z.string().optional().describe('upper bound, in the same form as the lower one'),
  })
  .refine((b) => (b.fromTimestamp === undefined) !== (b.fromOffsets === undefined), {
    message: 'give exactly one of fromTimestamp and fromOffsets',
  })
  .register(components, { id: 'ReplayRequest' });

export const ReplayJobParams = z.object({
  name: z.string().min(1).describe('the pipeline name from the config file'),
  id: z.string().min(1).describe('the job id the replay request returned'),
});

export const ReplayJobSchema = z
  .object({
    jobId: z.string(),
    pipeline: z.string(),
    kind: z.enum(['replay', 'deadletters']),
    state: z
      .enum(['queued', 'running', 'done', 'failed'])
      .describe('queued until the lease holder claims it between two slices'),
    requestedBy: z.string(),
    requestedAt: z.string(),
    updatedAt: z.string(),
    holder: z.string().nullable().describe('the process that runs (or last ran) it'),
    attempt: count.describe('how often it was claimed: a new lease holder resumes a job its predecessor left running'),
    progress: z.object({
      chunksDone: count,
      chunksTotal: count.describe('0 until the ranges are planned'),
      offsetsDone: count,
      offsetsTotal: count,
      rowsIn: count.describe('staged rows the done chunks read'),
      inserted: count.describe('final rows the done chunks added (keys not represented within the window)'),
      percent: z.number().int().min(0).max(100),
    }),
    error: z.string().nullable().describe('why it failed, or why a retry is pending'),
    result: z
      .record(z.string(), z.unknown())
      .nullable()
      .describe('once done: ranges, chunks, rowsIn, inserted, duplicates, rewound'),
  })
  .register(components, { id: 'ReplayJob' });

const _job: Same<z.output<typeof ReplayJobSchema>, ReplayJobStatus> = true;

// ---- the web page's views ------------------------------------------------------

export const HistorySchema = z
  .object({
    name: z.string(),
    minutes: count,
    buckets: z
      .array(
        z.object({
          minute: count.describe('start of the minute, milliseconds since the epoch'),
          arrived: count.describe('messages that arrived: staged, plus dead letters that never reached staging'),
          processed: count.describe('staged rows the slices committed in the minute read'),
          inserted: count,
          duplicates: count,
          refused: count.describe('messages the final table refused, now dead letters'),
          deadLetters: count.describe('dead letters of the minute: unparsable or invalid, plus refused'),
          slices: count,
          maxSliceMs: count.describe('the longest slice committed in the minute'),
          waiting: count.describe('staged rows not yet in a committed slice at the end of the minute'),
        }),
      )
      .describe('oldest first, one per minute, the current minute last'),
  })
  .describe("per minute, from winnow's own tables: the committed slices' counts, arrivals, rows waiting")
  .register(components, { id: 'History' });

export const DeadLetterOverviewSchema = z
  .object({
    total: count,
    reasons: z.array(z.object({ error: z.string(), count, last: z.string().describe('the newest one (UTC)') })),
    recent: z
      .array(
        z.object({
          topic: z.string(),
          partition: z.number().int().nonnegative(),
          offset,
          ingestedAt: z.string(),
          error: z.string(),
        }),
      )
      .describe("newest first; the messages' text stays in ClickHouse (winnow deadletters list shows it)"),
  })
  .register(components, { id: 'DeadLetterOverview' });

export const CheckSummarySchema = z
  .object({
    checkedAt: z.string(),
    ok: z.boolean(),
    mode: z.enum(['full', 'incremental']),
    durationMs: z.number().nonnegative(),
    slices: count.describe('committed slices the check covered'),
    failed: z.array(z.string()).describe('the parts that found a problem'),
    repaired: count.describe('rows repaired: surplus copies removed, final rows re-inserted, seen keys restored'),
  })
  .register(components, { id: 'CheckSummary' });

export const CheckList = z
  .object({ checks: z.array(CheckSummarySchema).describe('newest first') })
  .register(components, { id: 'CheckList' });

export const ReplayJobList = z
  .object({ jobs: z.array(ReplayJobSchema).describe('newest first') })
  .register(components, { id: 'ReplayJobList' });

const _history: Same<z.output<typeof HistorySchema>, PipelineHistory> = true;
const _dead: Same<z.output<typeof DeadLetterOverviewSchema>, DeadLetterOverview> = true;
const _check: Same<z.output<typeof CheckSummarySchema>, CheckSummary> = true;
