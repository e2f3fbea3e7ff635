/**
 * A loopback reverse proxy in front of a test registry that misbehaves on demand, for the faults a
 * real registry does not produce: a blob download that is throttled, that stalls (headers and some
 * bytes, then nothing), or whose connection is closed part way. Everything else is forwarded as is
 * (the Host header too, so the registry's upload Locations point back at the proxy). Tests use its
 * host in references, as if it were the registry.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { listenOnLoopback } from './net.js';
import type { TestRegistry } from './registry.js';

export type BlobFault =
  /** The body at about this many bytes per second, in small slices. */
  | { kind: 'throttle'; bytesPerSecond: number }
  /** The headers and the first `afterBytes` bytes, then nothing: the connection stays open and silent. */
  | { kind: 'stall'; afterBytes: number }
  /** The headers and the first `afterBytes` bytes, then the connection is closed. */
  | { kind: 'truncate'; afterBytes: number };

/** One blob GET through the proxy. */
export interface BlobRequest {
  digest: string;
  startedAt: number;
  /** Body bytes sent to the client so far. */
  sent: number;
  /** When the client's connection closed (the download finished, failed or was abandoned). */
  closedAt?: number;
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`: the "registry" of the references under test (plain HTTP). */
  host: string;
  /** The fault for every blob GET from now on (undefined: none), or only for blob `digest`. */
  setFault(fault: BlobFault | undefined, digest?: string): void;
  /** Every blob GET so far, in order. */
  readonly blobRequests: readonly BlobRequest[];
  /**
   * Resolves once a blob GET has sent at least `bytes` body bytes (for a test to act mid-download);
   * only GETs from index `from` of blobRequests on count (default: all).
   */
  waitForBytes(bytes: number, opts?: { from?: number; timeoutMs?: number }): Promise<BlobRequest>;
  close(): Promise<void>;
}

const SLICE = 16 * 1024;
const BLOB_GET = /^\/v2\/.+\/blobs\/(sha256:[a-f0-9]{64})$/;

export async function startFaultProxy(target: TestRegistry): Promise<FaultProxy> {
  const upstream = new URL(target.url);
  const faults = new Map<string, BlobFault>();
  let every: BlobFault | undefined;
  const blobRequests: BlobRequest[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();

  const faultFor = (digest: string): BlobFault | undefined => faults.get(digest) ?? every;

  /** Sends `body` to `res` as the fault says, counting what was sent. */
  async function relay(body: IncomingMessage, res: ServerResponse, fault: BlobFault | undefined, seen: BlobRequest): Promise<void> {
    const send = async (chunk: Buffer): Promise<void> => {
      seen.sent += chunk.length;
      for (const wake of waiters) wake();
      if (!res.write(chunk)) await new Promise<void>((ok) => res.once('drain', ok).once('close', ok));
    };
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (res.destroyed) return;
      if (fault === undefined) {
        await send(chunk);
        continue;
      }
      for (let at = 0; at < chunk.length && !res.destroyed; ) {
        if (fault.kind === 'throttle') {
          const slice = chunk.subarray(at, at + SLICE);
          await send(slice);
          at += slice.length;
          await sleep(Math.ceil((slice.length / fault.bytesPerSecond) * 1000));
          continue;
        }
        const room = fault.afterBytes - seen.sent;
        if (room > 0) {
          const slice = chunk.subarray(at, at + room);
          await send(slice);
          at += slice.length;
          continue;
        }
        if (fault.kind === 'truncate') {
          res.socket?.destroy();
          return;
        }
        // stall: nothing more, ever; the client has to give up (or the proxy is closed).
        await new Promise<void>((ok) => res.once('close', ok));
        body.destroy();
        return;
      }
    }
    res.end();
  }

  const server = createServer((req, res) => {
    const blob = req.method === 'GET' ? BLOB_GET.exec(req.url ?? '') : null;
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      if (!blob || answer.statusCode !== 200) {
        answer.pipe(res);
        return;
      }
      const seen: BlobRequest = { digest: blob[1]!, startedAt: Date.now(), sent: 0 };
      blobRequests.push(seen);
      res.once('close', () => {
        seen.closedAt = Date.now();
        answer.destroy();
      });
      relay(answer, res, faultFor(seen.digest), seen).catch(() => res.destroy());
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const port = await listenOnLoopback(server);

  return {
    host: `127.0.0.1:${port}`,
    setFault(fault, digest) {
      if (digest === undefined) every = fault;
      else if (fault === undefined) faults.delete(digest);
      else faults.set(digest, fault);
    },
    blobRequests,
    waitForBytes(bytes, { from = 0, timeoutMs = 30_000 } = {}) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = blobRequests.slice(from).find((r) => r.sent >= bytes);
          if (!hit) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no blob download reached ${bytes} bytes within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
