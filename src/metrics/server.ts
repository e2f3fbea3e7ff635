/**
 * The operations endpoint of `artifact follow`: `GET /metrics` (Prometheus text format), `GET /healthz`
 * (the agent's loop is alive) and `GET /readyz` (every followed ref is installed). Plain node:http;
 * nothing else is served.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { DiginfraError, messageOf } from '../errors.js';

/** The port docs/follow.md and the Helm chart use: `--metrics-addr 0.0.0.0:9376`. */
export const DEFAULT_METRICS_PORT = 9376;

export interface Probe {
  ok: boolean;
  /** Shown in the response body (plain text), e.g. which refs are not installed yet. */
  detail?: string;
}

export interface OpsServerOptions {
  registry: Registry;
  healthy: () => Probe;
  ready: () => Probe;
}

export interface OpsServer {
  /** The bound address (port 0 resolved to the real port). */
  host: string;
  port: number;
  close(): Promise<void>;
}

/** `HOST:PORT`, `:PORT` (all interfaces) or `[::1]:PORT`. */
export function parseListenAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new DiginfraError('USAGE', `--metrics-addr "${addr}" must be HOST:PORT, like 0.0.0.0:${DEFAULT_METRICS_PORT} or 127.0.0.1:${DEFAULT_METRICS_PORT}`);
  }
  const host = m[1] ?? m[2];
  return { host: host === '' ? undefined : host, port };
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(body);
}

function probe(res: ServerResponse, p: Probe, head: boolean): void {
  const body = `${p.ok ? 'ok' : 'not ok'}${p.detail ? `: ${p.detail}` : ''}\n`;
  res.writeHead(p.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

export async function startOpsServer(addr: string, opts: OpsServerOptions): Promise<OpsServer> {
  const { host, port } = parseListenAddr(addr);
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://agent').pathname;
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics': {
        try {
          const text = await opts.registry.metrics();
          res.writeHead(200, { 'content-type': opts.registry.contentType, 'cache-control': 'no-store' });
          res.end(head ? undefined : text);
        } catch (err) {
          send(res, 500, `metrics failed: ${messageOf(err)}\n`);
        }
        return;
      }
      case '/healthz':
        probe(res, opts.healthy(), head);
        return;
      case '/readyz':
        probe(res, opts.ready(), head);
        return;
      default:
        send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, `${messageOf(err)}\n`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new DiginfraError('USAGE', `cannot listen on ${addr} for metrics: ${err.code ?? messageOf(err)}`, {
          cause: err,
          hint: err.code === 'EADDRINUSE' ? 'another process uses that port; pick another with --metrics-addr' : undefined,
        }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    host: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
