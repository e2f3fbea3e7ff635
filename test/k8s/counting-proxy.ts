/**
 * A loopback HTTP proxy in front of one registry that records every request it forwards: what the
 * origin registry saw, request by request, without touching the origin's own config.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { listenOnLoopback } from '../helpers/net.js';

export interface SeenRequest {
  method: string;
  path: string;
  status: number;
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
    seen.push({ method: req.method ?? 'GET', path: new URL(req.url ?? '/', 'http://x').pathname, status: answer.statusCode ?? 0 });
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    await pipeline(answer, res);
  };
  const server = createServer((req, res) => {
    forward(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  const port = await listenOnLoopback(server);
  return {
    host: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
