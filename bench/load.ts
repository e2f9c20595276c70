/**
 * The generated load: user sign-up events like the reference scenario's
 * (event_id, user_id, created_at, user_name, user_email) padded with the kind
 * of fields real sign-up events carry to about 300 bytes of JSON, with a given
 * share of duplicates (a re-send of a recent event, on any partition).
 * Two producers: preload (as fast as the broker takes it) and paced (an
 * offered rate, for the live and latency phases).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import { CompressionTypes } from 'kafkajs';

const FIRST = [
  'ada',
  'alan',
  'grace',
  'linus',
  'margaret',
  'ken',
  'barbara',
  'dennis',
  'frances',
  'edsger',
  'radia',
  'john',
];
const LAST = [
  'lovelace',
  'turing',
  'hopper',
  'torvalds',
  'hamilton',
  'thompson',
  'liskov',
  'ritchie',
  'allen',
  'dijkstra',
  'perlman',
  'backus',
];
const SOURCES = ['web', 'ios', 'android', 'partner-api'];
const COUNTRIES = ['DE', 'FR', 'US', 'BR', 'IN', 'JP', 'NG', 'SE'];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64)',
  'Mozilla/5.0 (iPhone; iOS 17_4)',
  'okhttp/4.12.0',
  'Mozilla/5.0 (Windows NT 10.0)',
];
/** How far back a duplicate reaches: one of the last RECENT originals. */
const RECENT = 20_000;

/** mulberry32: small, fast, seeded; the load's structure is reproducible (ids are random). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LoadMessage {
  value: string;
  partition: number;
  eventId: string;
  duplicate: boolean;
  producedAt: number;
}

export interface LoadCounts {
  messages: number;
  originals: number;
  duplicates: number;
  bytes: number;
}

/** An endless stream of events; `counts.originals` is the number of distinct keys so far. */
export class EventSource {
  readonly counts: LoadCounts = { messages: 0, originals: 0, duplicates: 0, bytes: 0 };
  private readonly rand: () => number;
  private readonly recent: { eventId: string; value: string }[] = [];
  private next = 0;

  constructor(
    private readonly partitions: number,
    private readonly dupRatio: number,
    seed = 42,
  ) {
    this.rand = prng(seed);
  }

  private pick<T>(xs: T[]): T {
    return xs[Math.floor(this.rand() * xs.length)] as T;
  }

  message(now = Date.now()): LoadMessage {
    const partition = this.next++ % this.partitions;
    this.counts.messages++;
    if (this.recent.length > 0 && this.rand() < this.dupRatio) {
      const orig = this.recent[Math.floor(this.rand() * this.recent.length)]!;
      this.counts.duplicates++;
      this.counts.bytes += orig.value.length;
      return { value: orig.value, partition, eventId: orig.eventId, duplicate: true, producedAt: now };
    }
    const user = `${this.pick(FIRST)}${this.pick(LAST)}${Math.floor(this.rand() * 1000)}`;
    const eventId = randomUUID();
    const value = JSON.stringify({
      event_id: eventId,
      user_id: randomUUID(),
      created_at: new Date(now).toISOString().slice(0, 23) + '123',
      user_name: user,
      user_email: `${user}@example.com`,
      signup_source: this.pick(SOURCES),
      country: this.pick(COUNTRIES),
      ip: `203.0.${Math.floor(this.rand() * 256)}.${Math.floor(this.rand() * 256)}`,
      user_agent: this.pick(AGENTS),
      produced_at: now,
    });
    this.counts.originals++;
    this.counts.bytes += value.length;
    if (this.recent.length < RECENT) this.recent.push({ eventId, value });
    else this.recent[this.counts.originals % RECENT] = { eventId, value };
    return { value, partition, eventId, duplicate: false, producedAt: now };
  }
}

export async function createTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

async function connectedProducer(kafka: Kafka): Promise<Producer> {
  // No idempotence, so batches of one partition may be in flight together.
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 16 });
  await producer.connect();
  return producer;
}

function send(producer: Producer, topic: string, batch: LoadMessage[]): Promise<unknown> {
  return producer.send({
    topic,
    acks: 1,
    compression: CompressionTypes.None,
    messages: batch.map((m) => ({ partition: m.partition, value: m.value, timestamp: String(m.producedAt) })),
  });
}

/** Produces `events` messages as fast as the broker takes them; progress every few seconds. */
export async function preload(
  kafka: Kafka,
  topic: string,
  source: EventSource,
  events: number,
  progress: (line: string) => void,
): Promise<{ seconds: number; rate: number }> {
  const producer = await connectedProducer(kafka);
  const started = performance.now();
  let lastReport = started;
  const inFlight = new Set<Promise<unknown>>();
  try {
    for (let sent = 0; sent < events;) {
      const n = Math.min(2_000, events - sent);
      const now = Date.now();
      const batch = Array.from({ length: n }, () => source.message(now));
      sent += n;
      const p = send(producer, topic, batch).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 6) await Promise.race(inFlight);
      if (performance.now() - lastReport > 5_000) {
        lastReport = performance.now();
        progress(`preload: ${sent.toLocaleString('en')} / ${events.toLocaleString('en')} sent`);
      }
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds, rate: events / seconds };
}

export interface PacedProducer {
  readonly source: EventSource;
  /** messages acknowledged by the broker */
  acked(): number;
  /** messages the schedule asked for so far */
  offered(): number;
  setRate(rate: number): void;
  stop(): Promise<void>;
}

/**
 * Sends `rate` messages/s in small ticks (at most `maxInFlight` sends
 * outstanding; when the broker or the generator cannot keep up, acked() falls
 * behind offered()). `onSent` sees each message once the broker acknowledged it.
 */
export async function startPaced(
  kafka: Kafka,
  topic: string,
  source: EventSource,
  rate: number,
  onSent?: (m: LoadMessage) => void,
): Promise<PacedProducer> {
  const producer = await connectedProducer(kafka);
  const tickMs = 20;
  let current = rate;
  let due = 0;
  let offered = 0;
  let acked = 0;
  let stopped = false;
  let failure: unknown;
  const inFlight = new Set<Promise<unknown>>();
  let last = performance.now();
  const loop = (async () => {
    while (!stopped) {
      const now = performance.now();
      due += ((now - last) * current) / 1000;
      last = now;
      const n = Math.floor(due);
      // Sends of at most 2,000 messages (a partition's batch stays under the broker's 1 MB limit).
      for (let k = n; k > 0 && inFlight.size < 16; k -= 2_000) {
        const take = Math.min(k, 2_000);
        due -= take;
        offered += take;
        const wall = Date.now();
        const batch = Array.from({ length: take }, () => source.message(wall));
        const p = send(producer, topic, batch)
          .then(() => {
            acked += batch.length;
            if (onSent) for (const m of batch) onSent(m);
          })
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      // With all sends outstanding the schedule keeps counting: the backlog shows as acked() < offered().
      await new Promise((r) => setTimeout(r, tickMs));
    }
    await Promise.all(inFlight);
  })();
  return {
    source,
    acked: () => acked,
    offered: () => offered + Math.floor(due),
    setRate(r) {
      current = r;
    },
    async stop() {
      stopped = true;
      await loop;
      await producer.disconnect();
      if (failure) throw new Error('the paced producer failed to send', { cause: failure });
    },
  };
}

/** Messages of `topic` the consumer group has not committed yet (all of them before its first commit). */
export async function groupLag(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]));
    return ends.reduce((a, e) => a + Number(e.high) - (done.get(e.partition) ?? 0), 0);
  } finally {
    await admin.disconnect();
  }
}
