/**
 * A seeded generator of user events with a known duplicate structure, and the
 * oracle that says which rows the final table must hold. The oracle applies
 * the window semantics of ARCHITECTURE.md on its own (greedy first-wins over
 * occurrences in processing order), independent of winnow's SQL.
 */

export interface UserEvent {
  event_id: string;
  user_id: string;
  created_at: string;
  user_name: string;
  user_email: string;
}

export type Kind =
  | 'original'
  | 'retry-in-window' // same partition, later, different payload: dropped (first wins)
  | 'resend' // exact copy, same partition: dropped
  | 'cross-partition' // exact copy in another partition: dropped
  | 'cross-topic' // exact copy in the other topic: dropped
  | 'beyond-window' // same key, t beyond the window of the kept one, new payload: kept
  | 'chain' // same key within the window of a beyond-window copy: dropped
  | 'malformed';

export interface GenMessage {
  topic: string;
  partition: number;
  timestamp: number;
  value: Buffer;
  kind: Kind;
  phase: number;
}

export interface FinalRow {
  event_id: string;
  user_id: string;
  name: string;
  email: string;
  created_at: string;
}

/** mulberry32: small, seeded, good enough for test data */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuid(r: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export interface Topology {
  /** topic with 3 partitions, and a second topic with 1 */
  topics: [{ name: string; partitions: number }, { name: string; partitions: number }];
  windowMs: number;
  baseTime: number;
}

export const MALFORMED: Buffer[] = [
  Buffer.from('{"event_id": "a1b2c3d4-0000-4000-a000-000000000001", "user_id": '), // truncated JSON
  Buffer.from(
    '{"user_id": "a1b2c3d4-0000-4000-a000-000000000002", "user_name": "x", "user_email": "x@y", "created_at": "2025-05-09T00:05:32"}',
  ), // no key
  Buffer.from(
    '{"event_id": null, "user_id": "a1b2c3d4-0000-4000-a000-000000000003", "user_name": "x", "user_email": "x@y", "created_at": "2025-05-09T00:05:32"}',
  ), // null key
  Buffer.from(
    '{"event_id": 12345, "user_id": "a1b2c3d4-0000-4000-a000-000000000004", "user_name": "x", "user_email": "x@y", "created_at": "2025-05-09T00:05:32"}',
  ), // key of the wrong type
  Buffer.from(
    '{"event_id": "not-a-uuid", "user_id": "a1b2c3d4-0000-4000-a000-000000000005", "user_name": "x", "user_email": "x@y", "created_at": "2025-05-09T00:05:32"}',
  ),
  Buffer.from(
    '{"event_id": "a1b2c3d4-0000-4000-a000-000000000006", "user_id": "a1b2c3d4-0000-4000-a000-000000000006", "user_name": 42, "user_email": "x@y", "created_at": "2025-05-09T00:05:32"}',
  ), // wrong type
  Buffer.from(
    '{"event_id": "a1b2c3d4-0000-4000-a000-000000000007", "user_id": "a1b2c3d4-0000-4000-a000-000000000007", "user_name": "x", "user_email": "x@y", "created_at": "yesterday-ish"}',
  ), // unreadable time
  Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // invalid UTF-8
  Buffer.from('[1, 2, 3]'), // not an object
  Buffer.from('plain text'),
];

function isoMicros(ms: number, micros: number): string {
  return new Date(ms).toISOString().slice(0, 19) + '.' + String(micros).padStart(6, '0');
}

/**
 * Two phases: phase 1 holds originals with same-partition retries and
 * re-sends, and every malformed message; phase 2 (produced after phase 1 is
 * processed) holds cross-partition and cross-topic copies, beyond-window
 * copies and their chains, and new originals. Timestamps never decrease within
 * a partition, so processing order is offset order there.
 */
export function generate(seed: number, originals: number, topo: Topology): GenMessage[][] {
  const r = rng(seed);
  const [t1, t2] = topo.topics;
  const places = [
    ...Array.from({ length: t1.partitions }, (_v, p) => ({ topic: t1.name, partition: p })),
    { topic: t2.name, partition: 0 },
  ];
  const clock = new Map<string, number>();
  const at = (topic: string, partition: number, t: number): number => {
    const k = `${topic}/${partition}`;
    const v = Math.max(t, (clock.get(k) ?? 0) + 1);
    clock.set(k, v);
    return v;
  };
  const enc = (e: UserEvent): Buffer => Buffer.from(JSON.stringify(e));
  const phase1: GenMessage[] = [];
  const phase2: GenMessage[] = [];
  const kept: { e: UserEvent; place: (typeof places)[number]; t: number }[] = [];
  let tick = topo.baseTime;
  const newEvent = (): UserEvent => ({
    event_id: uuid(r),
    user_id: uuid(r),
    created_at: isoMicros(tick, Math.floor(r() * 1e6)),
    user_name: `user${Math.floor(r() * 1e9)}`,
    user_email: `u${Math.floor(r() * 1e9)}@example.com`,
  });
  for (let i = 0; i < originals; i++) {
    tick += 50;
    const e = newEvent();
    const place = places[Math.floor(r() * places.length)] ?? places[0]!;
    const t = at(place.topic, place.partition, tick);
    phase1.push({ ...place, timestamp: t, value: enc(e), kind: 'original', phase: 1 });
    kept.push({ e, place, t });
    const roll = r();
    if (roll < 0.1) {
      const retry = { ...e, user_name: e.user_name + '_retry' };
      phase1.push({
        ...place,
        timestamp: at(place.topic, place.partition, t + 1000),
        value: enc(retry),
        kind: 'retry-in-window',
        phase: 1,
      });
    } else if (roll < 0.2) {
      phase1.push({
        ...place,
        timestamp: at(place.topic, place.partition, t + 10),
        value: enc(e),
        kind: 'resend',
        phase: 1,
      });
    }
  }
  MALFORMED.forEach((value, i) => {
    const place = places[i % places.length]!;
    phase1.push({
      ...place,
      timestamp: at(place.topic, place.partition, tick + i),
      value,
      kind: 'malformed',
      phase: 1,
    });
  });

  // Phase 2, later in time than all of phase 1 within each partition.
  tick += 60_000;
  for (const k of kept) {
    const roll = r();
    if (roll < 0.08) {
      const others = places.filter((p) => p.topic === k.place.topic && p.partition !== k.place.partition);
      const place = others[Math.floor(r() * others.length)];
      if (place)
        phase2.push({
          ...place,
          timestamp: at(place.topic, place.partition, k.t + 60_000),
          value: enc(k.e),
          kind: 'cross-partition',
          phase: 2,
        });
    } else if (roll < 0.14) {
      const place = places.find((p) => p.topic !== k.place.topic)!;
      phase2.push({
        ...place,
        timestamp: at(place.topic, place.partition, k.t + 60_000),
        value: enc(k.e),
        kind: 'cross-topic',
        phase: 2,
      });
    } else if (roll < 0.2) {
      const again = { ...k.e, user_name: k.e.user_name + '_later' };
      const tb = at(k.place.topic, k.place.partition, k.t + topo.windowMs + 1_000);
      phase2.push({ ...k.place, timestamp: tb, value: enc(again), kind: 'beyond-window', phase: 2 });
      if (r() < 0.5) {
        const chain = { ...k.e, user_name: k.e.user_name + '_chain' };
        phase2.push({
          ...k.place,
          timestamp: at(k.place.topic, k.place.partition, tb + 5_000),
          value: enc(chain),
          kind: 'chain',
          phase: 2,
        });
      }
    }
  }
  for (let i = 0; i < Math.floor(originals / 10); i++) {
    tick += 50;
    const e = newEvent();
    const place = places[Math.floor(r() * places.length)]!;
    phase2.push({
      ...place,
      timestamp: at(place.topic, place.partition, tick),
      value: enc(e),
      kind: 'original',
      phase: 2,
    });
  }
  // Kafka needs each partition's messages in timestamp order as produced.
  phase2.sort((a, b) => a.timestamp - b.timestamp);
  return [phase1, phase2];
}

/** The event_id of a valid message, undefined for a malformed one. */
export function eventIdOf(m: GenMessage): string | undefined {
  return parseValid(m)?.event_id;
}

function parseValid(m: GenMessage): UserEvent | undefined {
  if (m.kind === 'malformed') return undefined;
  return JSON.parse(m.value.toString('utf8')) as UserEvent;
}

/** created_at as a ClickHouse DateTime (UTC) prints it: whole seconds. */
function toDateTime(iso: string): string {
  return iso.slice(0, 10) + ' ' + iso.slice(11, 19);
}

/**
 * The rows the final table must hold: per key, greedy over occurrences in
 * processing order (phase, then t, topic, partition, production order);
 * an occurrence is kept when no kept one of its key is closer than the window.
 */
export function expectedRows(phases: GenMessage[][], windowMs: number): FinalRow[] {
  const keptTimes = new Map<string, number[]>();
  const rows: FinalRow[] = [];
  phases.forEach((msgs, phase) => {
    const order = msgs
      .map((m, i) => ({ m, i }))
      .sort(
        (a, b) =>
          a.m.timestamp - b.m.timestamp ||
          (a.m.topic < b.m.topic ? -1 : a.m.topic > b.m.topic ? 1 : 0) ||
          a.m.partition - b.m.partition ||
          a.i - b.i,
      );
    void phase;
    for (const { m } of order) {
      const e = parseValid(m);
      if (!e) continue;
      const times = keptTimes.get(e.event_id) ?? [];
      if (times.some((k) => Math.abs(m.timestamp - k) < windowMs)) continue;
      times.push(m.timestamp);
      keptTimes.set(e.event_id, times);
      rows.push({
        event_id: e.event_id,
        user_id: e.user_id,
        name: e.user_name,
        email: e.user_email,
        created_at: toDateTime(e.created_at),
      });
    }
  });
  return rows;
}

export function sortRows(rows: FinalRow[]): FinalRow[] {
  const k = (r: FinalRow): string => `${r.event_id}|${r.name}|${r.created_at}`;
  return [...rows].sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
}
