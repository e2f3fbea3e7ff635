/**
 * A loopback HTTP proxy in front of one registry that records every request it forwards: what the
 * origin registry saw, request by request, without touching the origin's own config. It imports node:
 * modules only, so bench/fleet.mjs loads it too (Node's type stripping).
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';

export interface SeenRequest {
  method: string;
  path: string;
  status: number;
  /** Body bytes the origin sent. */
  bytes: number;
}

export interface CountingProxy {
  /** `127.0.0.1:PORT`: the host to name in references (or as a cache's remoteurl). */
  host: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** What a registry request is for, from its path (distribution's API routes). */
export function requestKind(path: string): 'ping' | 'manifest' | 'blob' | 'tags' | 'referrers' | 'other' {
  if (/^\/v2\/?$/.test(path)) return 'ping';
  if (/\/manifests\/[^/]+$/.test(path)) return 'manifest';
  if (/\/blobs\/sha256:[a-f0-9]{64}$/.test(path)) return 'blob';
  if (/\/tags\/list$/.test(path)) return 'tags';
  if (/\/referrers\//.test(path)) return 'referrers';
  return 'other';
}

export async function startCountingProxy(origin: string): Promise<CountingProxy> {
  const target = new URL(origin);
  const seen: SeenRequest[] = [];
  const forward = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } });
    const answered = new Promise<IncomingMessage>((ok, fail) => upstream.once('response', ok).once('error', fail));
    await pipeline(req, upstream);
    const answer = await answered;
    let bytes = 0;
    answer.on('data', (chunk: Buffer) => (bytes += chunk.length));
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    await pipeline(answer, res);
    seen.push({ method: req.method ?? 'GET', path: new URL(req.url ?? '/', 'http://x').pathname, status: answer.statusCode ?? 0, bytes });
  };
  const server = createServer((req, res) => {
    forward(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', () => ok()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
