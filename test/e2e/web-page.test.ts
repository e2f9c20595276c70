/**
 * The web page at `/` of `winnow run`, in a real headless Chromium (Debian's
 * /usr/bin/chromium, or WINNOW_CHROMIUM) driven by playwright-core, against a
 * daemon with traffic on the real servers: the charts hold the per-minute
 * counts the slices recorded (their sums are the pipeline's totals), and the
 * pipeline's health, its recent slices, dead letters with their reasons,
 * consistency checks and a replay job show. The pipeline has an
 * api.replayToken: the page reads without it. A screenshot goes to
 * test/artifacts/web-page.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, runCli, type Daemon } from '../support/cli.ts';
import { createTopic, freshDatabase, kafka, servers, uniqueName, waitFor } from '../support/helpers.ts';

const CHROMIUM = process.env['WINNOW_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
/** Without the background-networking flags Chromium dials out, and this machine's closed network refuses it. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const MALFORMED = ['plain text', '{"event_id": "k1", "payload": '];
/**
 * WINNOW_WEB_TRAFFIC_MINUTES=N keeps traffic going for N minutes before the page is loaded
 * (a round every 15 s), so the charts span several minutes: how the README's screenshot was taken.
 */
const TRAFFIC_MINUTES = Number(process.env['WINNOW_WEB_TRAFFIC_MINUTES'] ?? 0);

/** What was sent: distinct keys, copies of keys already sent (duplicates within the window), malformed. */
const sent = { keys: 0, copies: 0, malformed: 0 };
const produced = (): number => sent.keys + sent.copies + sent.malformed;

/** One round: `keys` new keys, then `copies` of them sent again, and the malformed messages. */
function round(keys: number, copies: number, malformed: string[]): string[] {
  const from = sent.keys;
  const event = (i: number, what: string): string => JSON.stringify({ event_id: `k${i}`, payload: `${what} ${i}` });
  const values = [
    ...Array.from({ length: keys }, (_, i) => event(from + i, 'first')),
    ...malformed,
    ...Array.from({ length: copies }, (_, i) => event(from + i, 'again')),
  ];
  sent.keys += keys;
  sent.copies += copies;
  sent.malformed += malformed.length;
  return values;
}

interface Stats {
  messagesConsumed: number;
  inserted: number;
  duplicatesDropped: number;
  deadLetters: number;
  pendingRows: number;
}
interface Bucket {
  arrived: number;
  inserted: number;
  duplicates: number;
  deadLetters: number;
  waiting: number;
}

async function produce(topic: string, values: string[]): Promise<void> {
  const producer = kafka().producer();
  await producer.connect();
  try {
    await producer.send({ topic, messages: values.map((value, i) => ({ partition: i % 2, value })) });
  } finally {
    await producer.disconnect();
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('the web page in a headless Chromium', () => {
  const name = uniqueName('web');
  const topic = uniqueName('web');
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  let dir: string;
  let daemon: Daemon | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const problems: string[] = [];

  const api = async <T>(url: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(`${daemon!.api}${url}`, init);
    expect(res.status, url).toBeLessThan(300);
    return (await res.json()) as T;
  };

  beforeAll(
    async () => {
      if (!existsSync(CHROMIUM)) {
        throw new Error(
          `no Chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (or set WINNOW_CHROMIUM)`,
        );
      }
      db = await freshDatabase('winnow_web');
      await createTopic(topic, 2);
      dir = await mkdtemp(path.join(os.tmpdir(), 'winnow-web-'));
      const config = path.join(dir, 'winnow.yaml');
      const s = servers();
      await writeFile(
        config,
        `pipelines:
  - name: ${name}
    source: { brokers: [${s.kafkaBrokersForClickHouse.join(', ')}], topics: [${topic}] }
    columns:
      - { name: event_id, type: String }
      - { name: payload, type: String }
    dedup: { key: [event_id], window: 10m }
    sink: { url: ${s.clickhouseUrl}, database: ${db.name}, table: events }
    schedule: { interval: 1s, maxSliceRows: 60, checkInterval: 5s }
    api: { replayToken: sesame }
`,
      );
      const migrated = await runCli(['migrate', 'up', '--config', config]);
      expect(migrated.code, migrated.stderr).toBe(0);
      daemon = await startDaemon(config);

      await produce(topic, round(300, 100, MALFORMED));
      for (let r = 1; r <= TRAFFIC_MINUTES * 4; r++) {
        await new Promise((res) => setTimeout(res, 15_000));
        await produce(topic, round(40 + ((r * 37) % 60), 10 + ((r * 11) % 20), r % 5 === 0 ? [MALFORMED[r % 2]!] : []));
      }
      const valid = sent.keys + sent.copies;
      await waitFor(
        () => api<Stats>(`/api/v1/pipelines/${name}/stats`),
        (st) =>
          st.messagesConsumed === produced() && st.pendingRows === 0 && st.inserted + st.duplicatesDropped === valid,
        120_000,
        'the pipeline to process every message',
      );
      // A replay job, queued with the token (the page itself never sends it).
      const job = await api<{ jobId: string }>(`/api/v1/pipelines/${name}/replay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer sesame' },
        body: JSON.stringify({ fromOffsets: '0:0,1:0' }),
      });
      await waitFor(
        () => api<{ state: string }>(`/api/v1/pipelines/${name}/replays/${job.jobId}`),
        (j) => j.state === 'done',
        120_000,
        'the replay job to finish',
      );
      await waitFor(
        () => api<{ checks: unknown[] }>(`/api/v1/pipelines/${name}/checks`),
        (c) => c.checks.length > 0,
        60_000,
        'a consistency check',
      );

      const profile = await mkdtemp(path.join(os.tmpdir(), 'winnow-chromium-'));
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1360, height: 1500 },
      });
      page = context.pages()[0] ?? (await context.newPage());
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('response', (r) => {
        // /readyz answers 503 while a pipeline fails: the page shows that; anything else failing is a defect.
        if (r.status() >= 400 && !r.url().endsWith('/readyz')) problems.push(`${r.status()} ${r.url()}`);
      });
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
    },
    180_000 + TRAFFIC_MINUTES * 60_000,
  );

  afterAll(async () => {
    await context?.close();
    if (daemon) expect(await daemon.stop()).toBe(0);
    await db?.client.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('draws the last hour from winnow’s tables and lists health, slices, dead letters, checks and replays', async () => {
    const stats = await api<Stats>(`/api/v1/pipelines/${name}/stats`);
    await page.goto(`${daemon!.api}/`);
    // The charts once their data has arrived; then two more refreshes, so auto-refresh works too.
    await page.waitForFunction(() => (globalThis as unknown as WebState).winnow.charts.throughput !== undefined);
    const refreshes = await page.evaluate(() => (globalThis as unknown as WebState).winnow.refreshes);
    await page.waitForFunction((n) => (globalThis as unknown as WebState).winnow.refreshes >= n + 1, refreshes, {
      timeout: 15_000,
    });

    // The charts' series, as uPlot holds them: 60 minutes, summing to the pipeline's totals.
    const charts = await page.evaluate(() => {
      const c = (globalThis as unknown as WebState).winnow.charts;
      return { throughput: c.throughput!.data, duplicates: c.duplicates!.data, waiting: c.waiting!.data };
    });
    const [minutes, arrived = [], inserted = []] = charts.throughput;
    expect(minutes).toHaveLength(60);
    expect(sum(arrived)).toBe(produced());
    // Every key kept once, every copy dropped; the replay re-read processed offsets and added nothing.
    expect(stats.inserted).toBe(sent.keys);
    expect(sum(inserted)).toBe(sent.keys);
    const [, duplicates = [], deadLetters = []] = charts.duplicates;
    expect(stats.duplicatesDropped).toBe(sent.copies);
    expect(sum(duplicates)).toBe(sent.copies);
    expect(sum(deadLetters)).toBe(sent.malformed);
    expect(charts.waiting[1]?.at(-1)).toBe(stats.pendingRows);
    // The API the charts come from says the same.
    const history = await api<{ buckets: Bucket[] }>(`/api/v1/pipelines/${name}/history?minutes=60`);
    expect(sum(history.buckets.map((b) => b.arrived))).toBe(produced());
    expect(await page.getAttribute('[data-chart="throughput"]', 'data-suminserted')).toBe(String(sent.keys));

    // The pipeline: processing, this daemon holds the lease.
    const pipelineRow = page.locator(`#pipelines tr[data-pipeline="${name}"]`);
    expect(await pipelineRow.getAttribute('data-state')).toBe('processing');
    expect(await pipelineRow.textContent()).toContain(`api=${daemon!.api}`);
    expect(await page.textContent('#ready')).toBe('ready');
    // Lag per partition, recent slices, dead letters with reasons, checks, the replay.
    expect(await page.locator('#partitions tbody tr').count()).toBe(2);
    expect(await page.locator('#slices tbody tr[data-seq]').count()).toBeGreaterThan(1);
    expect(await page.textContent('#dead-total')).toBe(`(${sent.malformed})`);
    expect(await page.locator('#dead-recent tbody tr').count()).toBe(Math.min(sent.malformed, 10));
    const reasons = (await page.locator('#dead-reasons tbody td.error').allTextContents()).join('\n');
    expect(reasons).not.toBe('');
    expect(reasons).not.toContain('plain text'); // the reasons, not the messages
    expect(await page.textContent('#checks tbody')).toContain('consistent');
    expect(await page.textContent('#replays tbody')).toMatch(/replay.*done.*100 %/s);
    expect(await page.isHidden('#problem')).toBe(true);
    expect(problems).toEqual([]);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-page.png'), fullPage: true });
  });
});

/** What app.js exposes on `window.winnow`. */
interface WebState {
  winnow: {
    refreshes: number;
    charts: Partial<Record<'throughput' | 'duplicates' | 'waiting', { data: number[][] }>>;
  };
}
