/**
 * Why one file over 300 lines: one subject (the HTTP layer) through one in-memory fixture.
 *
 * The HTTP layer alone: buildApp around in-memory deps with fixed data, driven
 * by app.inject (no sockets, no servers).
 *
 * Why ~400 lines in one file: it tests one thing, the app buildApp returns,
 * through one fixture (the fake deps and fixed data below) that every section
 * uses; the sections follow the API (health, pipelines, consistency and
 * replay, metrics, openapi, errors) and are 30-90 lines each; split, every
 * part would import a shared fixture module.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CheckReport } from '../../src/operations/checker.ts';
import type { ReplayJobStatus } from '../../src/operations/replay-jobs.ts';
import { WinnowError } from '../../src/errors.ts';
import type { SliceRecord } from '../../src/slicing/checkpoints.ts';
import { buildApp } from '../../src/server/app.ts';
import type {
  AppDeps,
  CheckSummary,
  DeadLetterOverview,
  PipelineHistory,
  PipelineStats,
  PipelineSummary,
  Readiness,
  ReplayBody,
} from '../../src/server/deps.ts';
import { WinnowMetrics } from '../../src/server/metrics.ts';
import { parseScrape, sampleValue } from '../support/prom-text.ts';

const clicks: PipelineSummary = {
  name: 'clicks',
  topics: ['clicks'],
  table: 'clicks',
  database: 'analytics',
  windowMs: 3_600_000,
  key: ['event_id'],
};
const quoted: PipelineSummary = { ...clicks, name: 'we"ird\\name', topics: ['weird'] };
const broken: PipelineSummary = { ...clicks, name: 'broken', topics: ['broken'] };

function statsOf(name: string): PipelineStats {
  return {
    name,
    messagesConsumed: 1010,
    staged: 1000,
    inserted: 900,
    duplicatesDropped: 80,
    duplicateRatio: 80 / 980,
    deadLetters: 10,
    refusedByFinal: 0,
    pendingRows: 20,
    partitions: [
      {
        topic: 'clicks',
        partition: 0,
        nextOffset: 500,
        stagedHigh: 509,
        logEnd: 512,
        consumerOffset: 510,
        lag: 12,
        lagSeconds: 4,
      },
      {
        topic: 'clicks',
        partition: 1,
        nextOffset: 480,
        stagedHigh: 489,
        logEnd: null,
        consumerOffset: null,
        lag: null,
        lagSeconds: null,
      },
    ],
    lastSlice: {
      sliceId: 's-41',
      seq: 41,
      committedAt: '2024-05-01 12:00:00.000',
      durationMs: 1500,
      rowsIn: 30,
      inserted: 28,
      duplicates: 2,
    },
    eventsPerSecond: { last1m: 2.5, last5m: 1.25 },
    lastError: null,
  };
}

const slice: SliceRecord = {
  pipeline: 'clicks',
  seq: 41,
  sliceId: 's-41',
  status: 'committed',
  ranges: [{ topic: 'clicks', partition: 0, fromOffset: 470, toOffset: 500 }],
  nextOffsets: [{ topic: 'clicks', partition: 0, offset: 500 }],
  rowsIn: 30,
  inserted: 28,
  duplicates: 2,
  rejected: 0,
  plannedAt: '2024-05-01 11:59:58.500',
  committedAt: '2024-05-01 12:00:00.000',
  durationMs: 1500,
};

const ready: Readiness = { ready: true, checks: { 'clicks.clickhouse': { ok: true }, 'clicks.slices': { ok: true } } };

const queuedJob: ReplayJobStatus = {
  jobId: 'replay-m1x2-0a1b2c3d',
  pipeline: 'clicks',
  kind: 'replay',
  state: 'queued',
  requestedBy: 'api',
  requestedAt: '2026-11-27T10:00:00.000Z',
  updatedAt: '2026-11-27T10:00:00.000Z',
  holder: null,
  attempt: 0,
  progress: { chunksDone: 0, chunksTotal: 0, offsetsDone: 0, offsetsTotal: 0, rowsIn: 0, inserted: 0, percent: 0 },
  error: null,
  result: null,
};

const doneJob: ReplayJobStatus = {
  ...queuedJob,
  jobId: 'replay-m1x2-99999999',
  state: 'done',
  holder: 'vm:4242:c9847ce0',
  attempt: 1,
  progress: { chunksDone: 1, chunksTotal: 1, offsetsDone: 10, offsetsTotal: 10, rowsIn: 10, inserted: 0, percent: 100 },
  result: { replayId: 'replay-m1x2-99999999', chunks: 1, rowsIn: 10, inserted: 0, duplicates: 10, rewound: [] },
};

const historyOf = (name: string, minutes: number): PipelineHistory => ({
  name,
  minutes,
  buckets: Array.from({ length: minutes }, (_, i) => ({
    minute: 1_700_000_000_000 + i * 60_000,
    arrived: 10,
    processed: 9,
    inserted: 8,
    duplicates: 1,
    refused: 0,
    deadLetters: 1,
    slices: 2,
    maxSliceMs: 40,
    waiting: 1,
  })),
});
const deadLetters: DeadLetterOverview = {
  total: 1,
  reasons: [{ error: 'unparsable JSON', count: 1, last: '2024-05-01 12:00:00.000' }],
  recent: [
    { topic: 'clicks', partition: 0, offset: 7, ingestedAt: '2024-05-01 12:00:00.000', error: 'unparsable JSON' },
  ],
};
const check: CheckSummary = {
  checkedAt: '2024-05-01T12:00:00.000Z',
  ok: true,
  mode: 'incremental',
  durationMs: 120,
  slices: 4,
  failed: [],
  repaired: 0,
};

function fakeDeps(overrides: Partial<AppDeps> = {}) {
  const deps = {
    pipelines: vi.fn((): PipelineSummary[] => [clicks]),
    stats: vi.fn((name: string): Promise<PipelineStats> => Promise.resolve(statsOf(name))),
    slices: vi.fn((_name: string, limit: number): Promise<SliceRecord[]> => Promise.resolve([slice].slice(0, limit))),
    readiness: vi.fn((): Promise<Readiness> => Promise.resolve(ready)),
    consistency: vi.fn((): Promise<CheckReport | null> => Promise.resolve(null)),
    replay: vi.fn((name: string, _req: ReplayBody, bearer: string | undefined): Promise<ReplayJobStatus> => {
      if (bearer !== 'sesame') return Promise.reject(new WinnowError('UNAUTHORIZED', 'replay needs the bearer token'));
      return Promise.resolve({ ...queuedJob, pipeline: name });
    }),
    replayJob: vi.fn((_name: string, id: string): Promise<ReplayJobStatus> => {
      if (id === queuedJob.jobId) return Promise.resolve(queuedJob);
      if (id === doneJob.jobId) return Promise.resolve(doneJob);
      return Promise.reject(new WinnowError('NOT_FOUND', `no replay job ${id}`));
    }),
    history: vi.fn((name: string, minutes: number) => Promise.resolve(historyOf(name, minutes))),
    deadLetters: vi.fn((): Promise<DeadLetterOverview> => Promise.resolve(deadLetters)),
    checks: vi.fn((): Promise<CheckSummary[]> => Promise.resolve([check])),
    replays: vi.fn((): Promise<ReplayJobStatus[]> => Promise.resolve([doneJob, queuedJob])),
  };
  return Object.assign(deps, overrides);
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function start(deps: AppDeps): FastifyInstance {
  app = buildApp(deps);
  return app;
}

async function get(deps: AppDeps, url: string) {
  const res = await start(deps).inject({ method: 'GET', url });
  return { status: res.statusCode, type: res.headers['content-type'], text: res.body, json: (): unknown => res.json() };
}

describe('health', () => {
  it('GET /healthz answers without calling any dependency', async () => {
    const deps = fakeDeps();
    const res = await get(deps, '/healthz');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(deps.pipelines).not.toHaveBeenCalled();
    expect(deps.readiness).not.toHaveBeenCalled();
    expect(deps.stats).not.toHaveBeenCalled();
  });

  it('GET /readyz is 200 with the readiness object when ready', async () => {
    const res = await get(fakeDeps(), '/readyz');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(ready);
  });

  it('GET /readyz is 503 with the failing checks when not ready', async () => {
    const notReady: Readiness = {
      ready: false,
      checks: { 'clicks.migrated': { ok: false, error: 'not migrated: run winnow migrate up' } },
    };
    const res = await get(fakeDeps({ readiness: () => Promise.resolve(notReady) }), '/readyz');
    expect(res.status).toBe(503);
    expect(res.json()).toEqual(notReady);
  });

  it('GET /readyz is 503 when the readiness check itself fails', async () => {
    const res = await get(
      fakeDeps({ readiness: () => Promise.reject(new Error('clickhouse unreachable')) }),
      '/readyz',
    );
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({ ready: false, checks: { readiness: { ok: false, error: 'clickhouse unreachable' } } });
  });
});

describe('pipelines', () => {
  it('GET /api/v1/pipelines lists the pipelines', async () => {
    const res = await get(fakeDeps({ pipelines: () => [clicks, quoted] }), '/api/v1/pipelines');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ pipelines: [clicks, quoted] });
  });

  it('GET /api/v1/pipelines/:name/stats returns the stats', async () => {
    const deps = fakeDeps();
    const res = await get(deps, '/api/v1/pipelines/clicks/stats');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(statsOf('clicks'));
    expect(deps.stats).toHaveBeenCalledWith('clicks');
  });

  it('decodes the pipeline name in the path', async () => {
    const deps = fakeDeps({ pipelines: () => [quoted] });
    const res = await get(deps, `/api/v1/pipelines/${encodeURIComponent(quoted.name)}/stats`);
    expect(res.status).toBe(200);
    expect(deps.stats).toHaveBeenCalledWith(quoted.name);
  });

  it('an unknown pipeline is 404 and its stats are never asked for', async () => {
    const deps = fakeDeps();
    for (const url of ['/api/v1/pipelines/x/stats', '/api/v1/pipelines/x/slices']) {
      const res = await get(deps, url);
      expect(res.status).toBe(404);
      expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no pipeline named "x"' } });
    }
    expect(deps.stats).not.toHaveBeenCalled();
    expect(deps.slices).not.toHaveBeenCalled();
  });

  it('GET /api/v1/pipelines/:name/slices defaults limit to 50', async () => {
    const deps = fakeDeps();
    const res = await get(deps, '/api/v1/pipelines/clicks/slices');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ slices: [slice] });
    expect(deps.slices).toHaveBeenCalledWith('clicks', 50);
  });

  it('passes limit through as a number', async () => {
    const deps = fakeDeps();
    for (const limit of [1, 7, 1000]) {
      expect((await get(deps, `/api/v1/pipelines/clicks/slices?limit=${limit}`)).status).toBe(200);
      expect(deps.slices).toHaveBeenLastCalledWith('clicks', limit);
    }
  });

  it.each(['0', 'abc', '5000', '1.5', '-3', ''])('limit=%s is 400 naming the parameter', async (limit) => {
    const deps = fakeDeps();
    const res = await get(deps, `/api/v1/pipelines/clicks/slices?limit=${limit}`);
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'USAGE', message: 'query parameter "limit": must be an integer from 1 to 1000' },
    });
    expect(deps.slices).not.toHaveBeenCalled();
  });

  it('an unknown query parameter is 400 naming it, not silently ignored', async () => {
    const res = await get(fakeDeps(), '/api/v1/pipelines/clicks/slices?limt=5');
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: { code: 'USAGE', message: 'unknown query parameter "limt"' } });
  });
});

describe('consistency and replay', () => {
  it('GET /api/v1/pipelines/:name/consistency returns the newest report, null before the first', async () => {
    const res = await get(fakeDeps(), `/api/v1/pipelines/${clicks.name}/consistency`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ report: null });
    const withReport = fakeDeps({
      consistency: () => Promise.resolve({ ok: true, pipeline: clicks.name } as unknown as CheckReport),
    });
    expect((await get(withReport, `/api/v1/pipelines/${clicks.name}/consistency`)).json()).toEqual({
      report: { ok: true, pipeline: clicks.name },
    });
  });

  it('POST replay without the bearer token is 401; with it, 202: the queued job and where to follow it', async () => {
    const deps = fakeDeps();
    const post = (headers: Record<string, string>, payload: unknown) =>
      start(deps).inject({
        method: 'POST',
        url: `/api/v1/pipelines/${clicks.name}/replay`,
        headers,
        payload: payload as Record<string, unknown>,
      });
    const none = await post({}, { fromOffsets: '0:0' });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    await app?.close();
    const wrong = await post({ authorization: 'Bearer nope' }, { fromOffsets: '0:0' });
    expect(wrong.statusCode).toBe(401);
    await app?.close();
    const ok = await post({ authorization: 'Bearer sesame' }, { fromTimestamp: '2026-11-27T00:00:00Z' });
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toEqual({ ...queuedJob, pipeline: clicks.name });
    expect(ok.headers['location']).toBe(`/api/v1/pipelines/${clicks.name}/replays/${queuedJob.jobId}`);
    expect(deps.replay).toHaveBeenCalledWith(clicks.name, { fromTimestamp: '2026-11-27T00:00:00Z' }, 'sesame');
  });

  it('GET a replay job reports its state and progress; an unknown job or pipeline is 404', async () => {
    const queued = await get(fakeDeps(), `/api/v1/pipelines/${clicks.name}/replays/${queuedJob.jobId}`);
    expect(queued.status).toBe(200);
    expect(queued.json()).toEqual(queuedJob);
    const done = await get(fakeDeps(), `/api/v1/pipelines/${clicks.name}/replays/${doneJob.jobId}`);
    expect(done.json()).toMatchObject({
      state: 'done',
      progress: { percent: 100, rowsIn: 10 },
      result: { duplicates: 10 },
    });
    const unknown = await get(fakeDeps(), `/api/v1/pipelines/${clicks.name}/replays/replay-nope`);
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const deps = fakeDeps();
    const noPipeline = await get(deps, `/api/v1/pipelines/nope/replays/${queuedJob.jobId}`);
    expect(noPipeline.status).toBe(404);
    expect(deps.replayJob).not.toHaveBeenCalled();
  });

  it('a job that breaks its schema is a 500, not a response nobody promised', async () => {
    const paused = { ...queuedJob, state: 'paused' } as unknown as ReplayJobStatus;
    const deps = fakeDeps({ replayJob: () => Promise.resolve(paused) });
    const res = await get(deps, `/api/v1/pipelines/${clicks.name}/replays/x`);
    expect(res.status).toBe(500);
  });

  it('POST replay needs exactly one lower bound and no unknown keys', async () => {
    const deps = fakeDeps();
    for (const payload of [{}, { fromOffsets: '0:0', fromTimestamp: '1' }, { fromOffsets: '0:0', extra: 1 }]) {
      const res = await start(deps).inject({
        method: 'POST',
        url: `/api/v1/pipelines/${clicks.name}/replay`,
        headers: { authorization: 'Bearer sesame' },
        payload,
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      await app?.close();
    }
    expect(deps.replay).not.toHaveBeenCalled();
  });
});

describe("the web page's views", () => {
  it('GET .../history defaults to 60 minutes, one bucket each', async () => {
    const deps = fakeDeps();
    const res = await get(deps, '/api/v1/pipelines/clicks/history');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(historyOf('clicks', 60));
    expect(deps.history).toHaveBeenCalledWith('clicks', 60);
    await get(deps, '/api/v1/pipelines/clicks/history?minutes=1440');
    expect(deps.history).toHaveBeenLastCalledWith('clicks', 1440);
  });

  it.each(['0', '1441', 'x', '2.5'])('minutes=%s is 400 naming the parameter', async (minutes) => {
    const deps = fakeDeps();
    const res = await get(deps, `/api/v1/pipelines/clicks/history?minutes=${minutes}`);
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: { code: 'USAGE', message: 'query parameter "minutes": must be an integer from 1 to 1440' },
    });
    expect(deps.history).not.toHaveBeenCalled();
  });

  it('GET .../deadletters, .../checks and .../replays answer with their lists, limit 1 to 100', async () => {
    const deps = fakeDeps();
    expect((await get(deps, '/api/v1/pipelines/clicks/deadletters')).json()).toEqual(deadLetters);
    expect(deps.deadLetters).toHaveBeenCalledWith('clicks', 10);
    expect((await get(deps, '/api/v1/pipelines/clicks/checks?limit=3')).json()).toEqual({ checks: [check] });
    expect(deps.checks).toHaveBeenCalledWith('clicks', 3);
    expect((await get(deps, '/api/v1/pipelines/clicks/replays?limit=100')).json()).toEqual({
      jobs: [doneJob, queuedJob],
    });
    const res = await get(deps, '/api/v1/pipelines/clicks/replays?limit=101');
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({
      error: { message: 'query parameter "limit": must be an integer from 1 to 100' },
    });
  });

  it('an unknown pipeline is 404 on every view', async () => {
    const deps = fakeDeps();
    for (const view of ['history', 'deadletters', 'checks', 'replays']) {
      const res = await get(deps, `/api/v1/pipelines/nope/${view}`);
      expect(res.status, view).toBe(404);
    }
    expect(deps.history).not.toHaveBeenCalled();
  });

  it('a view whose data breaks its schema is a 500, not a leak', async () => {
    const deps = fakeDeps({
      checks: vi.fn(() => Promise.resolve([{ ...check, ok: 'yes' } as unknown as CheckSummary])),
    });
    const res = await get(deps, '/api/v1/pipelines/clicks/checks');
    expect(res.status).toBe(500);
  });
});

describe('web page', () => {
  it('GET / is the page: HTML that loads its script and styles from this server only', async () => {
    const res = await get(fakeDeps(), '/');
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/html; charset=utf-8');
    expect(res.text).toContain('<script type="module" src="/web/app.js"></script>');
    const sources = [...res.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(sources.length).toBeGreaterThan(3);
    for (const src of sources) expect(src).toMatch(/^\/web\/|^data:,$/); // data:, is the empty favicon
  });

  it.each([
    ['app.js', 'text/javascript', '/api/v1/pipelines'],
    ['style.css', 'text/css', '.tile'],
    ['uPlot.iife.min.js', 'text/javascript', 'uPlot'],
    ['uPlot.min.css', 'text/css', '.uplot'],
  ])('GET /web/%s serves it as %s', async (file, type, content) => {
    const res = await get(fakeDeps(), `/web/${file}`);
    expect(res.status).toBe(200);
    expect(res.type).toContain(type);
    expect(res.text).toContain(content);
  });

  it.each(['index.html', '..%2Fapp.ts', 'nope.js', 'constructor'])('GET /web/%s is 404', async (file) => {
    const res = await get(fakeDeps(), `/web/${file}`);
    expect(res.status).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
  });
});

describe('metrics', () => {
  const metricsDeps = (readiness: Readiness = ready) =>
    fakeDeps({
      pipelines: () => [clicks, quoted, broken],
      stats: (name) =>
        name === 'broken' ? Promise.reject(new Error('clickhouse down')) : Promise.resolve(statsOf(name)),
      readiness: () => Promise.resolve(readiness),
    });

  it('serves the Prometheus text format: scrape gauges, build info, process metrics', async () => {
    const res = await get(metricsDeps(), '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const s = parseScrape(res.text);
    for (const name of [
      'winnow_up',
      'winnow_stats_error',
      'winnow_pending_rows',
      'winnow_staging_rows',
      'winnow_dead_letter_rows',
      'winnow_partition_lag_messages',
      'winnow_partition_lag_seconds',
      'winnow_lease_held',
      'winnow_build_info',
    ])
      expect(s.families.get(name)?.type, name).toBe('GAUGE');
    for (const name of ['winnow_events_inserted_total', 'winnow_slices_failed_total', 'process_cpu_seconds_total'])
      expect(s.families.get(name)?.type, name).toBe('COUNTER');
    expect(s.families.get('winnow_slice_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(sampleValue(s, 'winnow_up')).toBe(1);
    expect(sampleValue(s, 'winnow_pending_rows', { pipeline: 'clicks' })).toBe(20);
    expect(sampleValue(s, 'winnow_partition_lag_messages', { pipeline: 'clicks', partition: '0' })).toBe(12);
    // a partition whose lag is unknown (Kafka unreachable) has no sample rather than a made-up one
    expect(sampleValue(s, 'winnow_partition_lag_messages', { pipeline: 'clicks', partition: '1' })).toBeUndefined();
    // what used to be here: table counts as *_total and a gauge of rates
    expect(s.families.has('winnow_events_per_second')).toBe(false);
    expect(s.families.has('winnow_staged_total')).toBe(false);
    expect(res.text.endsWith('\n')).toBe(true);
  });

  it('escapes label values', async () => {
    const res = await get(metricsDeps(), '/metrics');
    expect(res.text.split('\n')).toContain('winnow_pending_rows{pipeline="we\\"ird\\\\name"} 20');
    expect(sampleValue(parseScrape(res.text), 'winnow_pending_rows', { pipeline: 'we"ird\\name' })).toBe(20);
  });

  it('a pipeline whose stats fail shows as winnow_stats_error 1 and the rest of the page stays', async () => {
    const res = await get(metricsDeps(), '/metrics');
    expect(res.status).toBe(200);
    const lines = res.text.split('\n');
    expect(lines).toContain('winnow_stats_error{pipeline="broken"} 1');
    expect(lines.filter((l) => !l.startsWith('#') && l.includes('pipeline="broken"'))).toEqual([
      'winnow_stats_error{pipeline="broken"} 1',
    ]);
    expect(lines).toContain('winnow_pending_rows{pipeline="clicks"} 20');
  });

  it('winnow_up is 0 when not ready', async () => {
    const res = await get(metricsDeps({ ready: false, checks: { x: { ok: false, error: 'no' } } }), '/metrics');
    expect(res.text.split('\n')).toContain('winnow_up 0');
  });

  it('serves the counters of the metrics it was built with', async () => {
    const metrics = new WinnowMetrics({ processMetrics: false });
    metrics.track('clicks');
    metrics.sliceCommitted('clicks', {
      rowsIn: 30,
      inserted: 28,
      duplicates: 2,
      rejected: 0,
      durationMs: 1500,
      committedAtMs: 0,
      oldestEventMs: null,
    });
    app = buildApp(metricsDeps(), { metrics });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    const s = parseScrape(res.body);
    expect(sampleValue(s, 'winnow_events_inserted_total', { pipeline: 'clicks' })).toBe(28);
    expect(sampleValue(s, 'winnow_slice_duration_seconds_sum', { pipeline: 'clicks' })).toBe(1.5);
  });

  it('keeps the samples of a family together under its TYPE line', async () => {
    const res = await get(metricsDeps(), '/metrics');
    const seen = new Set<string>();
    let current = '';
    for (const line of res.text.trimEnd().split('\n')) {
      const type = /^# TYPE (\S+)/.exec(line);
      if (type?.[1]) {
        expect(seen.has(type[1])).toBe(false);
        seen.add(type[1]);
        current = type[1];
      } else if (line !== '' && !line.startsWith('#')) {
        expect(line.startsWith(current)).toBe(true);
      }
    }
  });
});

describe('openapi', () => {
  type Doc = {
    openapi: string;
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: { name: string; in: string; required: boolean; schema: Record<string, unknown> }[];
          responses: Record<string, unknown>;
        }
      >
    >;
    components: { schemas: Record<string, unknown> };
  };

  it('lists every route with its parameters and response schemas', async () => {
    const res = await get(fakeDeps(), '/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json() as Doc;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/healthz',
        '/readyz',
        '/metrics',
        '/api/v1/pipelines',
        '/api/v1/pipelines/{name}/stats',
        '/api/v1/pipelines/{name}/slices',
        '/api/v1/pipelines/{name}/consistency',
        '/api/v1/pipelines/{name}/replay',
        '/api/v1/pipelines/{name}/replays/{id}',
        '/api/v1/pipelines/{name}/history',
        '/api/v1/pipelines/{name}/deadletters',
        '/api/v1/pipelines/{name}/checks',
        '/api/v1/pipelines/{name}/replays',
        '/api/v1/openapi.json',
        '/',
        '/web/{file}',
      ].sort(),
    );
    for (const [path, ops] of Object.entries(doc.paths))
      expect(Object.keys(ops)).toEqual([path.endsWith('/replay') ? 'post' : 'get']);

    const slices = doc.paths['/api/v1/pipelines/{name}/slices']?.['get'];
    expect(slices?.parameters).toEqual([
      expect.objectContaining({ name: 'name', in: 'path', required: true }),
      expect.objectContaining({
        name: 'limit',
        in: 'query',
        required: false,
        schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
      }),
    ]);
    expect(Object.keys(slices?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '404']));
    expect(doc.paths['/readyz']?.['get']?.responses).toHaveProperty('503');
    const replayResponses = doc.paths['/api/v1/pipelines/{name}/replay']?.['post']?.responses ?? {};
    expect(Object.keys(replayResponses)).toEqual(expect.arrayContaining(['202', '401']));
    expect(doc.paths['/api/v1/pipelines/{name}/replay']?.['post']?.responses).not.toHaveProperty('200');
    expect(doc.paths['/api/v1/pipelines/{name}/replays/{id}']?.['get']?.parameters).toEqual([
      expect.objectContaining({ name: 'name', in: 'path', required: true }),
      expect.objectContaining({ name: 'id', in: 'path', required: true }),
    ]);
    expect(doc.paths['/api/v1/pipelines/{name}/replays/{id}']?.['get']?.responses['200']).toMatchObject({
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ReplayJob' } } },
    });
    expect(doc.components.schemas).toHaveProperty('ReplayJob');
    expect(doc.paths['/metrics']?.['get']?.responses['200']).toMatchObject({
      content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } },
    });
  });

  it('declares the bearer scheme and puts it on the routes that check the token, and only there', async () => {
    const res = await get(fakeDeps(), '/api/v1/openapi.json');
    const doc = res.json() as Doc & {
      components: { securitySchemes?: Record<string, Record<string, unknown>> };
      paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
    };
    expect(Object.keys(doc.components.securitySchemes ?? {})).toEqual(['replayToken']);
    expect(doc.components.securitySchemes?.['replayToken']).toMatchObject({ type: 'http', scheme: 'bearer' });
    const secured = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => (op.security ? [[`${method} ${path}`, op.security]] : [])),
    );
    expect(secured).toEqual([['post /api/v1/pipelines/{name}/replay', [{ replayToken: [] }]]]);
    // what the document says is what the route does: without the token, 401
    const deps = fakeDeps({
      replay: (_n, _b, bearer) =>
        bearer === 's3cret'
          ? Promise.reject(new WinnowError('CONFLICT', 'not now'))
          : Promise.reject(new WinnowError('UNAUTHORIZED', 'replay needs a bearer token')),
    });
    await app?.close();
    app = buildApp(deps);
    const post = (headers: Record<string, string>) =>
      app!.inject({
        method: 'POST',
        url: '/api/v1/pipelines/clicks/replay',
        headers,
        payload: { fromTimestamp: '2024-05-01T00:00:00Z' },
      });
    expect((await post({})).statusCode).toBe(401);
    expect((await post({ authorization: 'Bearer s3cret' })).statusCode).toBe(409);
  });

  it('every $ref points at a component generated from the zod schemas', async () => {
    const res = await get(fakeDeps(), '/api/v1/openapi.json');
    const doc = res.json() as Doc;
    const refs = [...res.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(doc.components.schemas).toHaveProperty(ref as string);
    const stats = doc.components.schemas['PipelineStats'] as { type: string; required: string[] };
    expect(stats.type).toBe('object');
    expect(stats.required).toEqual(expect.arrayContaining(['duplicateRatio', 'partitions']));
  });
});

describe('errors', () => {
  it('an unknown route is a 404 JSON error', async () => {
    const res = await get(fakeDeps(), '/api/v2/nothing');
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route GET /api/v2/nothing' } });
  });

  it('an unexpected failure is 500 with its message and never its stack', async () => {
    const err = new Error('connection reset');
    const res = await get(fakeDeps({ stats: () => Promise.reject(err) }), '/api/v1/pipelines/clicks/stats');
    expect(res.status).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'INTERNAL', message: 'connection reset' } });
    expect(err.stack).toBeTruthy();
    expect(res.text).not.toContain('stack');
    expect(res.text).not.toMatch(/\bat .*\.ts/);
  });

  it('a WinnowError keeps its code; a failing ClickHouse or Kafka is 503, other failures 500', async () => {
    const res = await get(
      fakeDeps({
        slices: () => Promise.reject(new WinnowError('CLICKHOUSE', 'table is read-only', { hint: 'check the disk' })),
      }),
      '/api/v1/pipelines/clicks/slices',
    );
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({ error: { code: 'CLICKHOUSE', message: 'table is read-only' } });
    await app?.close();
    const other = await get(
      fakeDeps({ slices: () => Promise.reject(new WinnowError('MIGRATION', 'ahead of the code')) }),
      '/api/v1/pipelines/clicks/slices',
    );
    expect(other.status).toBe(500);
    expect(other.json()).toEqual({ error: { code: 'MIGRATION', message: 'ahead of the code' } });
  });

  it('a WinnowError NOT_FOUND from a dependency is 404, USAGE is 400', async () => {
    let res = await get(
      fakeDeps({ stats: () => Promise.reject(new WinnowError('NOT_FOUND', 'gone')) }),
      '/api/v1/pipelines/clicks/stats',
    );
    expect(res.status).toBe(404);
    await app?.close();
    res = await get(
      fakeDeps({ stats: () => Promise.reject(new WinnowError('USAGE', 'bad')) }),
      '/api/v1/pipelines/clicks/stats',
    );
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: { code: 'USAGE', message: 'bad' } });
  });

  it('a response that breaks its schema is a 500, not a silent leak', async () => {
    const bad = { ...statsOf('clicks'), duplicateRatio: Number.NaN } satisfies PipelineStats;
    const res = await get(fakeDeps({ stats: () => Promise.resolve(bad) }), '/api/v1/pipelines/clicks/stats');
    expect(res.status).toBe(500);
    const body = res.json() as { error: { code: string; message: string } };
    expect(body.error.code).toBe('INTERNAL');
    expect(body.error.message).toContain('duplicateRatio');
    expect(res.text).not.toMatch(/\bat .*\.ts/);
  });
});
