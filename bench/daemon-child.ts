/**
 * The controller under test, in its own process so that its memory and CPU are
 * its own: a Processor ticking like the daemon does (drain while there are
 * slices, then wait one tick). Started by daemon.ts with a JSON argument;
 * reports over the IPC channel; exits when told to stop or when its parent goes.
 */
import { connect } from '../src/clickhouse/client.ts';
import { Processor } from '../src/slicing/processor.ts';
import { instrument, type QueryStat } from './probe.ts';
import type { ChildMessage, ChildSpec, SliceReport } from './daemon.ts';

const spec = JSON.parse(process.argv[2] ?? '{}') as ChildSpec;
const send = (m: ChildMessage): void => {
  if (process.connected) process.send?.(m);
};
let stopping = false;
process.on('message', (m) => {
  if (m === 'stop') stopping = true;
});
process.on('disconnect', () => {
  stopping = true;
});

let queries: QueryStat[] = [];
const db = instrument(connect({ url: spec.url, requestTimeoutMs: 600_000 }), spec.insertSettings, (q) =>
  queries.push(q),
);
const processor = new Processor(db, spec.pipeline);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const rssTimer = setInterval(() => send({ kind: 'rss', rss: process.memoryUsage().rss }), 500);

async function main(): Promise<void> {
  while (!stopping) {
    queries = [];
    const started = performance.now();
    try {
      const outcome = await processor.runOneSlice();
      if (!outcome) {
        await sleep(spec.tickMs);
        continue;
      }
      const ins = queries.find((q) => q.kind === 'insert');
      const byKind: Record<string, number> = {};
      for (const q of queries) byKind[q.kind] = (byKind[q.kind] ?? 0) + q.ms;
      const s = outcome.slice;
      const report: SliceReport = {
        seq: s.seq,
        at: Date.now(),
        rowsIn: s.rowsIn,
        inserted: s.inserted,
        duplicates: s.duplicates,
        tickMs: performance.now() - started,
        insertMs: ins?.ms ?? 0,
        insertMemory: ins?.summary?.memoryBytes ?? 0,
        insertReadRows: ins?.summary?.readRows ?? 0,
        byKind,
      };
      send({ kind: 'slice', slice: report });
    } catch (err) {
      send({ kind: 'error', error: err instanceof Error ? err.message : String(err) });
      await sleep(1_000);
    }
  }
}

main()
  .catch((err: unknown) => send({ kind: 'error', error: err instanceof Error ? err.message : String(err) }))
  .finally(() => {
    clearInterval(rssTimer);
    const ru = process.resourceUsage();
    send({ kind: 'done', maxRss: ru.maxRSS * 1024, cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6 });
    void db.close().finally(() => {
      if (process.connected) process.disconnect();
    });
  });
