/**
 * A producer like the reference scenario's Python one: fake user sign-ups as
 * JSON on the topic `users`, and about one in five times a duplicate that
 * reuses the event_id of one of the last five events.
 * Run alone: node --import tsx scripts/producer.ts [--rate N] [--brokers host:port] [--topic users]
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Kafka, logLevel, type Producer } from 'kafkajs';

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

export interface UserEvent {
  event_id: string;
  user_id: string;
  created_at: string;
  user_name: string;
  user_email: string;
}

function pick<T>(xs: T[]): T {
  return xs[Math.floor(Math.random() * xs.length)] as T;
}

/** Python's datetime.now().isoformat(): local time, microseconds, no zone. */
function isoNow(): string {
  const d = new Date();
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 23);
  return local + String(Math.floor(Math.random() * 1000)).padStart(3, '0');
}

export function fakeEvent(): UserEvent {
  const user = `${pick(FIRST)}${pick(LAST)}${Math.floor(Math.random() * 100)}`;
  return {
    event_id: randomUUID(),
    user_id: randomUUID(),
    created_at: isoNow(),
    user_name: user,
    user_email: `${user}@example.com`,
  };
}

export interface ProducerCounts {
  events: number;
  duplicates: number;
}

export interface RunningProducer {
  counts: ProducerCounts;
  stop(): Promise<void>;
}

/** Sends about `rate` events per second (plus ~20% duplicates) until stopped. */
export async function startProducer(opts: {
  brokers: string[];
  topic: string;
  rate: number;
  sasl?: { username: string; password: string };
}): Promise<RunningProducer> {
  const kafka = new Kafka({
    clientId: 'winnow-demo-producer',
    brokers: opts.brokers,
    logLevel: logLevel.NOTHING,
    ...(opts.sasl ? { sasl: { mechanism: 'plain' as const, ...opts.sasl } } : {}),
  });
  const producer: Producer = kafka.producer();
  await producer.connect();
  const counts: ProducerCounts = { events: 0, duplicates: 0 };
  const recent: string[] = [];
  let stopped = false;
  const tickMs = 100;
  const loop = (async () => {
    let carry = 0;
    while (!stopped) {
      const started = Date.now();
      carry += (opts.rate * tickMs) / 1000;
      const n = Math.floor(carry);
      carry -= n;
      const messages: { value: string }[] = [];
      for (let i = 0; i < n; i++) {
        const event = fakeEvent();
        messages.push({ value: JSON.stringify(event) });
        counts.events++;
        const last = recent[recent.length - 1];
        if (last && Math.random() < 0.2) {
          messages.push({ value: JSON.stringify({ ...event, event_id: last }) });
          counts.duplicates++;
        }
        recent.push(event.event_id);
        if (recent.length > 5) recent.shift();
      }
      if (messages.length > 0) await producer.send({ topic: opts.topic, messages });
      await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - started))));
    }
  })();
  return {
    counts,
    async stop() {
      stopped = true;
      await loop;
      await producer.disconnect();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string', default: 'localhost:9093' },
      topic: { type: 'string', default: 'users' },
      rate: { type: 'string', default: '1' },
      plaintext: { type: 'boolean', default: false },
    },
  });
  const rate = Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0) throw new Error(`--rate must be a positive number, got ${values.rate}`);
  const p = await startProducer({
    brokers: values.brokers.split(','),
    topic: values.topic,
    rate,
    ...(values.plaintext ? {} : { sasl: { username: 'admin', password: 'admin-secret' } }),
  });
  process.stdout.write(
    `producing ~${rate} events/s (+~20% duplicates) to ${values.topic} at ${values.brokers}; Ctrl-C stops\n`,
  );
  const timer = setInterval(
    () => process.stdout.write(`sent ${p.counts.events} events, ${p.counts.duplicates} duplicates\n`),
    5000,
  );
  await new Promise<void>((r) => process.once('SIGINT', () => r()));
  clearInterval(timer);
  await p.stop();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`producer: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
