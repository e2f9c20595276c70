/**
 * A connection reset on a read is retried at once (a tick of the daemon sends
 * about ten requests; one reset read must not fail the whole tick and start a
 * back-off). Writes are never retried by the client: the slice protocol
 * decides how a write is re-run (its token, its checkpoint).
 *
 * A TCP proxy in front of the real ClickHouse resets the first `n` requests it
 * sees (before ClickHouse gets them, or after ClickHouse answered).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Db } from '../../src/clickhouse/client.ts';
import { WinnowError } from '../../src/errors.ts';
import { servers } from '../support/helpers.ts';
import { resetProxy, type ResetProxy } from '../support/reset-proxy.ts';

/** Resets the first `n` requests: `before` ClickHouse sees them, or `after` it has answered. */
function resettingProxy(n: number, when: 'before' | 'after'): Promise<ResetProxy> {
  const target = new URL(servers().clickhouseUrl);
  let seen = 0;
  return resetProxy({ host: target.hostname, port: Number(target.port) }, () => (++seen <= n ? when : undefined));
}

describe('reads through a connection that resets', () => {
  const open: { proxy: ResetProxy; db: Db }[] = [];
  const through = async (n: number, when: 'before' | 'after'): Promise<{ proxy: ResetProxy; db: Db }> => {
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
