/**
 * What may import what (ARCHITECTURE.md, "Folders and what may import what"):
 * the product's folders form layers, each importing only from layers below
 * it, so there is no import cycle between folders. The development servers
 * (dev/) are not product code: only the `dev` command reaches them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Lower rank first; a folder may import its own rank or lower. */
const RANKS: Record<string, number> = {
  'src/errors.ts': 0,
  'src/log.ts': 0,
  'src/config': 1,
  'src/clickhouse': 1,
  'src/kafka': 2,
  'src/provisioning': 3,
  'src/slicing': 4,
  'src/operations': 5,
  'src/daemon': 6,
  'src/server': 7,
  'src/cli': 8,
  dev: 1,
};

/** Imports allowed across the ranks above. */
const EXCEPTIONS: Array<[from: string, to: string, why: string]> = [
  ['src/cli/dev.ts', 'dev', '`winnow dev` starts the development servers'],
];

function unitOf(file: string): string | undefined {
  const rel = path.relative(root, file).split(path.sep).join('/');
  if (rel in RANKS) return rel;
  const parts = rel.split('/');
  const folder = parts[0] === 'src' ? parts.slice(0, 2).join('/') : parts[0]!;
  return folder in RANKS ? folder : undefined;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

interface Edge {
  file: string;
  from: string;
  to: string;
  target: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  const spec = /(?:from\s+|import\(\s*|new URL\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const file of [...sources(path.join(root, 'src')), ...sources(path.join(root, 'dev'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(spec)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      const from = unitOf(file);
      const to = unitOf(target);
      if (from === undefined || to === undefined) {
        out.push({
          file: path.relative(root, file),
          from: from ?? '?',
          to: to ?? `outside: ${path.relative(root, target)}`,
          target,
        });
        continue;
      }
      if (from !== to) out.push({ file: path.relative(root, file), from, to, target: path.relative(root, target) });
    }
  }
  return out;
}

describe('folder layers', () => {
  const all = edges();

  it('finds the imports it checks', () => {
    expect(all.some((e) => e.from === 'src/cli' && e.to === 'src/daemon')).toBe(true);
    expect(all.some((e) => e.from === 'src/slicing' && e.to === 'src/provisioning')).toBe(true);
  });

  it('every import stays inside the product folders and points down', () => {
    const wrong = all
      .filter((e) => !EXCEPTIONS.some(([file, to]) => e.file === file && e.to === to))
      .filter((e) => !(e.from in RANKS) || !(e.to in RANKS) || RANKS[e.to]! > RANKS[e.from]!)
      .map((e) => `${e.file} -> ${e.target} (${e.from} may not import ${e.to})`);
    expect(wrong).toEqual([]);
  });

  it('the product never imports the development servers', () => {
    const wrong = all
      .filter((e) => e.to === 'dev' && e.from !== 'dev')
      .filter((e) => !EXCEPTIONS.some(([file, to]) => e.file === file && e.to === to))
      .map((e) => e.file);
    expect(wrong).toEqual([]);
  });

  it('no cycle between folders', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of all) {
      if (!graph.has(e.from)) graph.set(e.from, new Set());
      graph.get(e.from)!.add(e.to);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (node: string, trail: string[]): void => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(node)), node].join(' -> '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...trail, node]);
      state.set(node, 'done');
    };
    for (const node of graph.keys()) visit(node, []);
    expect(cycles).toEqual([]);
  });
});
