/** Loopback ports for tests: listen on one, or find one that nothing listens on. */
import { createServer, type AddressInfo, type Server } from 'node:net';

/** Starts `server` on 127.0.0.1 on a port the system picks, and returns that port. */
export async function listenOnLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** A loopback port that was free a moment ago (whoever needs it must bind it itself, and may lose a race). */
export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listenOnLoopback(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A loopback port with nothing listening on it: a connection there is refused. */
export const deadPort = freePort;
