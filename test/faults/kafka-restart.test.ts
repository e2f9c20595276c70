/**
 * Fault 6: the Kafka broker is stopped and started again (same data directory
 * and ports) in the middle of the stream, once per phase, while the daemon
 * runs. The producer retries its sends (idempotent, so the client's retries do
 * not write twice; a send that still fails is sent again, and the oracle then
 * counts what Kafka really holds, read back from the log). ClickHouse's Kafka
 * engine must reconnect and resume from its committed offsets.
 * Invariants: I6 crash safety (Kafka), I4 (every message Kafka acknowledged is
 * staged or dead-lettered), and through the final check I1-I3.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline, produce, readLog, Servers, type DaemonProc } from './harness.ts';

describe('fault: the Kafka broker restarts mid-stream', () => {
  let servers: Servers;
  let daemon: DaemonProc | undefined;

  beforeAll(async () => {
    servers = await Servers.start('kafka-restart');
  });

  afterAll(async () => {
    daemon?.kill('SIGKILL');
    await servers?.stop();
  });

  it('restart the broker once per phase while streaming; exact against what Kafka acknowledged', async () => {
    const p = new Pipeline(servers, { label: 'kafkarestart', maxSliceRows: 400 });
    await p.create();
    const generated = p.generate(6006, 1500);
    const kafka = servers.kafkaClient();
    daemon = await p.startDaemon();
    const restarts: string[] = [];
    let resent = 0;
    let slowestMs = 0;

    const phases: ReturnType<typeof p.generate> = [];
    for (const [i, msgs] of generated.entries()) {
      let restart: Promise<void> | undefined;
      const sent = await produce(kafka, msgs, {
        batch: 100,
        pauseMs: 300,
        onProgress: (n) => {
          if (!restart && n >= msgs.length * (i === 0 ? 0.4 : 0.5)) {
            const t = Date.now();
            restart = servers.restartKafka().then(() => {
              restarts.push(
                `restarted at ${n}/${msgs.length} messages of phase ${i + 1} (${((Date.now() - t) / 1000).toFixed(1)} s)`,
              );
            });
          }
        },
      });
      await restart;
      resent += sent.resent;
      slowestMs = Math.max(slowestMs, sent.slowestMs);
      // The oracle's input: what Kafka holds of this phase (an unacknowledged send that was repeated may be there twice).
      const held = await readLog(kafka, p.topics, generated.slice(0, i + 1));
      phases.push(held[i] ?? []);
      expect(phases[i]!.length).toBeGreaterThanOrEqual(msgs.length);
      await p.waitQuiescent(phases.flat());
    }
    expect(restarts).toHaveLength(2);
    expect(daemon.running).toBe(true);
    const extra = phases.flat().length - generated.flat().length;
    await p.verify(
      'kafka-restart',
      phases,
      `${restarts.join('; ')}; slowest acknowledged send ${(slowestMs / 1000).toFixed(1)} s (retried through the restart), ` +
        `${resent} sends repeated by the producer, ${extra} messages in Kafka twice`,
    );
    expect(await daemon.stop()).toBe(0);
    daemon = undefined;
    await p.close();
  });
});
