/**
 * Port helpers shared by the embedded servers: find a free port, and refuse a
 * taken one before a server process is spawned, so the user gets one clear
 * error instead of a child that dies with "Address already in use" in its log.
 */
import net from 'node:net';
import { WinnowError } from '../src/errors.ts';

/** A port the OS considers free on `host` right now (bind port 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close((err) => {
        if (err) reject(err);
        else if (port === undefined) reject(new WinnowError('INTERNAL', `could not read the port bound on ${host}`));
        else resolve(port);
      });
    });
  });
}

/**
 * Throws PORT_IN_USE when nothing can listen on host:port. `what` names the
 * listener for the message ("ClickHouse HTTP"); `hint` says how to fix it and
 * defaults to a generic one, so each server can name its own flag.
 */
export function assertPortFree(port: number, host: string, what: string, hint?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      const fix = hint ?? `stop whatever listens there (ss -ltnp | grep :${port}) or choose another port`;
      if (err.code === 'EADDRINUSE') {
        reject(
          new WinnowError('PORT_IN_USE', `${what} port ${port} on ${host} is already in use`, {
            hint: fix,
            cause: err,
          }),
        );
      } else if (err.code === 'EACCES') {
        reject(
          new WinnowError('PORT_IN_USE', `${what} port ${port} on ${host} cannot be bound (permission denied)`, {
            hint: 'ports below 1024 need privileges; choose a port above 1024',
            cause: err,
          }),
        );
      } else if (err.code === 'EADDRNOTAVAIL') {
        reject(
          new WinnowError('CONFIG_INVALID', `${what} host ${host} is not an address of this machine`, {
            hint: 'use 127.0.0.1',
            cause: err,
          }),
        );
      } else {
        reject(err);
      }
    });
    server.listen({ port, host, exclusive: true }, () => {
      server.close((err) => (err ? reject(err) : resolve()));
    });
  });
}
