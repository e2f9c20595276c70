/**
 * A connection reset on a read is retried at once (a tick of the daemon sends
 * about ten requests; one reset read must not fail the whole tick and start a
 * back-off). Writes are never retried by the client: the slice protocol
 * decides how a write is re-run (its token, its checkpoint).
 *
 * A TCP proxy in front of the real ClickHouse resets the first `n` requests it
 * sees (before ClickHouse gets them, or after ClickHouse answered).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { WinnowError } from '../../src/errors.ts';
import { servers } from '../support/helpers.ts';

interface ResettingProxy {
  url: string;
  requests: number;
  close(): Promise<void>;
}

/** Resets the first `n` requests: `before` ClickHouse sees them, or `after` it has answered. */
async function resettingProxy(n: number, when: 'before' | 'after'): Promise<ResettingProxy> {
  const target = new URL(servers().clickhouseUrl);
  const sockets = new Set<net.Socket>();
  const state = { requests: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let breakAfter = false;
    let answering = true;
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', closeBoth).on('close', () => upstream.destroy());
    upstream.on('error', closeBoth).on('close', () => client.destroy());
    client.on('data', (chunk: Buffer) => {
      if (answering) {
        answering = false;
        state.requests++;
        if (state.requests <= n && when === 'before') {
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        breakAfter = state.requests <= n && when === 'after';
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (breakAfter) {
        breakAfter = false;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      answering = true;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('reads through a connection that resets', () => {
  const open: { proxy: ResettingProxy; db: Db }[] = [];
  const through = async (n: number, when: 'before' | 'after'): Promise<{ proxy: ResettingProxy; db: Db }> => {
    const proxy = await resettingProxy(n, when);
    const db = connect({ url: proxy.url, where: 'sink.url (test)' });
    open.push({ proxy, db });
    return { proxy, db };
  };
  afterEach(async () => {
    for (const { proxy, db } of open.splice(0)) {
      await db.close();
      await proxy.close();
    }
  });

  it('a read reset twice, before ClickHouse saw it, is answered by the third try', async () => {
    const { proxy, db } = await through(2, 'before');
    expect(await db.rows<{ x: number }>('SELECT 41 + 1 AS x')).toEqual([{ x: 42 }]);
    expect(proxy.requests).toBe(3);
  });

  it('a read reset after ClickHouse answered it is asked again', async () => {
    const { proxy, db } = await through(1, 'after');
    expect(await db.rows<{ x: string }>('SELECT toString(7) AS x')).toEqual([{ x: '7' }]);
    expect(proxy.requests).toBe(2);
  });

  it('a read that keeps failing gives up after three tries, with a retryable one-line error', async () => {
    const { proxy, db } = await through(100, 'before');
    const err: unknown = await db.rows('SELECT 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WinnowError);
    expect((err as WinnowError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/^sink\.url \(test\): cannot reach ClickHouse: connection reset/);
    expect((err as Error).message).not.toContain('\n');
    expect(proxy.requests).toBe(3);
  });

  it('a write is never retried by the client: its caller decides how to re-run it', async () => {
    const { proxy, db } = await through(1, 'before');
    const err: unknown = await db.command('SELECT 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WinnowError);
    expect(proxy.requests).toBe(1);
  });
});
