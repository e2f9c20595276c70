/**
 * A TCP proxy in front of ClickHouse's HTTP port that breaks the requests a
 * policy picks with a TCP reset (socket.resetAndDestroy()): `before` ClickHouse
 * sees the request, or `after` ClickHouse executed it and started answering
 * (the client never sees the answer). A request is the first client bytes after
 * an answer on a keep-alive connection; the policy sees those bytes.
 */
import net from 'node:net';

export type Fate = 'before' | 'after' | undefined;

export interface ResetProxy {
  url: string;
  /** requests seen */
  readonly requests: number;
  close(): Promise<void>;
}

export async function resetProxy(
  target: { host: string; port: number },
  /** the fate of a request, from its first bytes */
  policy: (head: Buffer) => Fate,
): Promise<ResetProxy> {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    let answering = true; // true between requests: the next client bytes start a new request
    let breakAfter = false;
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('data', (chunk: Buffer) => {
      if (answering) {
        answering = false;
        requests++;
        const fate = policy(chunk);
        if (fate === 'before') {
          client.resetAndDestroy();
          upstream.destroy();
          return;
        }
        breakAfter = fate === 'after';
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
  const addr = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    get requests() {
      return requests;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
