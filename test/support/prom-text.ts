/**
 * /metrics read back with a real Prometheus text-format parser from npm
 * (parse-prometheus-text-format, a port of the reference parsers), so the
 * tests do not trust winnow's own idea of the format.
 *
 * One known gap of that parser: it folds a histogram with labels besides `le`
 * into one sample and drops its _sum and _count. So the text is parsed twice:
 * as it is, for every family's name, TYPE and HELP; and with the histograms'
 * TYPE lines left out, so each _bucket, _sum and _count line comes back as a
 * sample of its own with all its labels.
 */
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';

export interface Scrape {
  families: Map<string, ParsedFamily>;
  /** every sample line: series name (with _bucket/_sum/_count) -> its samples */
  samples: Map<string, { labels: Record<string, string>; value: number }[]>;
}

export function parseScrape(text: string): Scrape {
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  const histograms = [...families.values()].filter((f) => f.type === 'HISTOGRAM').map((f) => f.name);
  const flat = text
    .split('\n')
    .filter((l) => !histograms.some((h) => l === `# TYPE ${h} histogram`))
    .join('\n');
  const samples = new Map<string, { labels: Record<string, string>; value: number }[]>();
  for (const f of parsePrometheusTextFormat(flat)) {
    samples.set(
      f.name,
      f.metrics.map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) })),
    );
  }
  return { families, samples };
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
export function sampleValue(s: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = (s.samples.get(name) ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v));
  if (found.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}
