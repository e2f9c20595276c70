/**
 * The Grafana dashboard and the compose profile `observability`, without
 * Docker: every PromQL expression of the dashboard parses (the Prometheus
 * team's own PromQL grammar) and names only series that winnow's /metrics
 * really writes; the Prometheus, Grafana provisioning and compose YAML parse
 * and point at each other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parser } from '@prometheus-io/lezer-promql';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { WinnowMetrics } from '../../src/server/metrics.ts';
import { observeScrape } from '../../src/server/prometheus.ts';
import { parseScrape } from '../support/prom-text.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (rel: string): string => readFileSync(`${root}/${rel}`, 'utf8');

interface Target {
  expr?: string;
  datasource?: { uid?: string };
}
interface Panel {
  title: string;
  type: string;
  datasource?: { uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: { query: string } | string; datasource?: { uid?: string } }[] };
}

const dashboard = JSON.parse(read('deploy/grafana/winnow-dashboard.json')) as Dashboard;
const panels = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...panels(p.panels ?? [])]);

/** Grafana's variables replaced by what they stand for, so the text is plain PromQL. */
function plain(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?pipeline\}?/g, '.*');
}

/** Metric names of the vector selectors in a PromQL expression; throws on a syntax error. */
function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  let error: string | undefined;
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) error ??= `syntax error at ${n.from}: ${JSON.stringify(expr.slice(n.from, n.from + 20))}`;
      if (n.name === 'Identifier' && n.node.parent?.name === 'VectorSelector') names.push(expr.slice(n.from, n.to));
    },
  });
  if (error) throw new Error(`${expr}\n${error}`);
  return names;
}

/** Every series name /metrics writes, from a registry that has seen every kind of event. */
async function exposedSeries(): Promise<Set<string>> {
  const m = new WinnowMetrics({ version: 'test' });
  m.track('p');
  m.sliceCommitted('p', {
    rowsIn: 3,
    inserted: 2,
    duplicates: 1,
    rejected: 0,
    durationMs: 10,
    committedAtMs: 2_000,
    oldestEventMs: 1_000,
  });
  m.sliceFailed('p');
  m.progressed('p', 1);
  m.leaseHeld('p', true);
  m.checked('p', true, 1);
  m.replay('p', 'done');
  const partition = { topic: 't', partition: 0, nextOffset: 1, stagedHigh: 1, logEnd: 2, consumerOffset: 2 };
  const stats = {
    name: 'p',
    messagesConsumed: 4,
    staged: 3,
    inserted: 2,
    duplicatesDropped: 1,
    duplicateRatio: 1 / 3,
    deadLetters: 1,
    refusedByFinal: 0,
    pendingRows: 1,
    partitions: [{ ...partition, lag: 1, lagSeconds: 1 }],
    lastSlice: null,
    eventsPerSecond: { last1m: 0, last5m: 0 },
    lastError: null,
  };
  observeScrape(m, true, [{ pipeline: 'p', stats }]);
  return new Set(parseScrape(await m.render()).samples.keys());
}

describe('Grafana dashboard', () => {
  const exprs = panels(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })),
  );

  it('has panels for what operators watch', () => {
    const text = JSON.stringify(dashboard);
    for (const m of [
      'winnow_partition_lag_messages',
      'winnow_partition_lag_seconds',
      'winnow_pending_rows',
      'winnow_events_consumed_total',
      'winnow_duplicates_dropped_total',
      'winnow_slice_duration_seconds_bucket',
      'winnow_dead_letters_total',
      'winnow_consistency_ok',
      'winnow_lease_held',
    ])
      expect(text, m).toContain(m);
    expect(panels(dashboard.panels).some((p) => p.type === 'heatmap')).toBe(true);
    expect(exprs.length).toBeGreaterThan(15);
  });

  it('every expression is PromQL that names only series /metrics writes', async () => {
    const exposed = await exposedSeries();
    const used = new Set<string>();
    for (const { panel, expr } of exprs) {
      expect(expr, panel).not.toBe('');
      const names = metricNames(plain(expr));
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const n of names) {
        expect(exposed.has(n), `${panel}: ${n} is not in /metrics`).toBe(true);
        used.add(n);
      }
    }
    // the variable's query too: label_values(<metric>, pipeline)
    for (const v of dashboard.templating.list) {
      const q = typeof v.query === 'string' ? v.query : v.query.query;
      const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(q);
      expect(m, q).not.toBeNull();
      expect(exposed.has(m![1]!), q).toBe(true);
    }
    // rates are PromQL's: no counter is read without rate() or increase()
    for (const { panel, expr } of exprs)
      for (const c of metricNames(plain(expr)).filter((n) => n.endsWith('_total') || n.endsWith('_bucket')))
        expect(new RegExp(`(rate|increase)\\(${c}\\b`).test(expr), `${panel}: ${c} without rate()`).toBe(true);
    expect(used.size).toBeGreaterThan(10);
  });

  it('catches a metric /metrics does not write and an expression that does not parse', async () => {
    const exposed = await exposedSeries();
    expect(metricNames('rate(winnow_events_per_second{pipeline="a"}[5m])').every((n) => exposed.has(n))).toBe(false);
    expect(() => metricNames('sum by (pipeline (rate(x[5m]))')).toThrow(/syntax error/);
  });

  it('uses the provisioned datasource', () => {
    const ds = parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yaml')) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    const [prom] = ds.datasources;
    expect(prom).toMatchObject({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' });
    for (const p of panels(dashboard.panels).filter((x) => x.type !== 'row')) {
      expect(p.datasource?.uid, p.title).toBe(prom!.uid);
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe(prom!.uid);
    }
  });
});

describe('compose profile observability', () => {
  interface Service {
    image: string;
    profiles?: string[];
    volumes?: string[];
    ports?: string[];
  }
  const compose = parseYaml(read('docker-compose.yaml')) as { services: Record<string, Service> };
  const mounts = (s: Service) =>
    (s.volumes ?? [])
      .filter((v) => v.startsWith('./'))
      .map((v) => {
        const [src, dst] = v.split(':');
        return { src: src!, dst: dst! };
      });

  it('Prometheus and Grafana are in the profile, the default stays small', () => {
    for (const name of ['prometheus', 'grafana']) {
      expect(compose.services[name]?.profiles, name).toEqual(['observability']);
      for (const p of compose.services[name]?.ports ?? []) expect(p.startsWith('127.0.0.1:'), p).toBe(true);
    }
    expect(compose.services['clickhouse']?.profiles).toBeUndefined();
  });

  it('every file they mount exists, and Prometheus scrapes the winnow daemon', () => {
    for (const name of ['prometheus', 'grafana'])
      for (const m of mounts(compose.services[name]!)) expect(existsSync(`${root}/${m.src}`), m.src).toBe(true);
    const promMount = mounts(compose.services['prometheus']!).find((m) => m.dst === '/etc/prometheus/prometheus.yml');
    expect(promMount).toBeDefined();
    const prom = parseYaml(read(promMount!.src)) as {
      scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    expect(prom.scrape_configs).toEqual([
      expect.objectContaining({
        job_name: 'winnow',
        metrics_path: '/metrics',
        static_configs: [{ targets: ['winnow:8080'] }],
      }),
    ]);
    // the dashboard file Grafana loads is the one this test checks, where its provider looks
    const provider = parseYaml(read('deploy/grafana/provisioning/dashboards/winnow.yaml')) as {
      providers: { options: { path: string } }[];
    };
    const dash = mounts(compose.services['grafana']!).find((m) => m.src.endsWith('winnow-dashboard.json'));
    expect(dash?.dst.startsWith(provider.providers[0]!.options.path + '/')).toBe(true);
  });
});
