/** A real HTTP server on 127.0.0.1 for index tests; records every request it sees. */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { listenOnLoopback } from '../helpers/net.js';
import type { TlsFiles } from '../helpers/tls.js';

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

export interface Served {
  /** `http://127.0.0.1:PORT` */
  base: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/**
 * Serves on 127.0.0.1; with `tls`, over HTTPS with that certificate; on `port` when given (to bring
 * back a server that was stopped, at the same URL), else on one the system picks.
 */
export async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, tls?: TlsFiles, port?: number): Promise<Served> {
  const requests: SeenRequest[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    handler(req, res);
  };
  const server = tls ? createHttpsServer({ cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) }, handle) : createServer(handle);
  const bound = port === undefined ? await listenOnLoopback(server) : await listenOn(server, port);
  return {
    base: `${tls ? 'https' : 'http'}://127.0.0.1:${bound}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function listenOn(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(port);
    });
  });
}

export const GOOD_INDEX = `- name: k8saudit
  type: plugin
  registry: ghcr.io
  repository: diginfra/plugins/plugin/k8saudit
  description: Read Kubernetes Audit Events and monitor Kubernetes Clusters
  keywords: [audit, kubernetes]
- name: k8saudit-rules
  type: rulesfile
  registry: ghcr.io
  repository: diginfra/plugins/ruleset/k8saudit
  description: Rules for Kubernetes audit events
  keywords: [audit, kubernetes]
`;

/**
 * Serves index bodies by path with ETag and Last-Modified, answering 304 to a matching conditional
 * request; optional basic auth. `bodies` may be changed between requests.
 */
export function indexHandler(
  bodies: Record<string, string>,
  opts: { auth?: { user: string; password: string }; etag?: boolean; lastModified?: boolean; contentType?: string } = {},
) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (opts.auth) {
      const want = `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="index"' }).end('unauthorized');
        return;
      }
    }
    const body = bodies[req.url ?? ''];
    if (body === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    const tag = `"${Buffer.from(body).toString('base64').slice(0, 16)}-${body.length}"`;
    const modified = 'Wed, 01 Jan 2025 00:00:00 GMT';
    const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/yaml' };
    if (opts.etag !== false) headers.etag = tag;
    if (opts.lastModified) headers['last-modified'] = modified;
    if ((opts.etag !== false && req.headers['if-none-match'] === tag) || (opts.lastModified && req.headers['if-modified-since'] === modified)) {
      res.writeHead(304, headers).end();
      return;
    }
    res.writeHead(200, headers).end(body);
  };
}
