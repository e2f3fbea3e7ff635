/**
 * The only place that opens connections to registries: one undici dispatcher per host (keep-alive
 * reused across requests), TLS settings per host, proxies from the environment, timeouts, and retries
 * with backoff that honour `Retry-After`.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, envHttpProxyAgent, request, type Dispatcher } from './undici.js';
import { DiginfraError } from '../errors.js';
import { apiHost } from '../reference/index.js';

export interface HostSettings {
  /** Talk HTTP instead of HTTPS (registries without TLS, e.g. a local one). */
  plainHttp: boolean;
  /** Skip TLS verification. Never on by default. */
  insecureSkipTlsVerify: boolean;
  /** PEM bundle trusted in addition to the system CAs. */
  caFile?: string;
  /** Host to contact instead of this one (pull-through mirror). */
  mirror?: string;
}

export interface RetryPolicy {
  /** Total attempts, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for; the request fails with RATE_LIMITED. */
  maxRetryAfterMs: number;
}

/** Default of TransportOptions.readTimeoutMs. */
const DEFAULT_READ_TIMEOUT_MS = 60_000;

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterMs: 60_000 };

export interface TransportOptions {
  hostSettings?: (host: string) => Partial<HostSettings>;
  retry?: Partial<RetryPolicy>;
  connectTimeoutMs?: number;
  /** Time to wait for response headers, and for each chunk of a body. */
  readTimeoutMs?: number;
  userAgent?: string;
  /** Called once per HTTP exchange (metrics). */
  onResponse?: (info: ExchangeInfo) => void;
  /** Environment for proxy variables; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Aborts every request of this transport, and the waits between retries (a command's SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** What `onResponse` is told of one exchange. */
export interface ExchangeInfo {
  registry: string;
  method: string;
  status: number | 'error';
  /** The mirror's host when the request went to the registry's mirror (HostSettings.mirror), else `origin`. */
  source: string;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** A body factory, so a retry can send the body again. */
  body?: () => Dispatcher.DispatchOptions['body'];
  /** Do not retry this request (non-replayable side effects). */
  noRetry?: boolean;
  /** Aborts this request (with the transport's own signal, whichever comes first); the error is the signal's reason. */
  signal?: AbortSignal;
}

export type HttpResponse = Dispatcher.ResponseData;

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const RETRY_ERROR_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Exponential backoff with full jitter. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

export function errorCodeOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isRetryableNetworkError(err: unknown): boolean {
  const code = errorCodeOf(err);
  return code !== undefined && RETRY_ERROR_CODES.has(code);
}

/** Turns a connection-level failure into a one-line error that names the host. */
export function networkError(host: string, err: unknown): DiginfraError {
  const code = errorCodeOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  let hint: string | undefined;
  if (code === 'ECONNREFUSED') hint = `is the registry running and listening on ${host}?`;
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') hint = `check the host name "${host}"`;
  else if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|EPROTO/.test(code + detail)) {
    hint = `trust the registry's CA with --ca-file (or registry.caFiles), or use --plain-http if ${host} does not speak TLS`;
  } else if (/wrong version number|packet length too long/i.test(detail)) {
    hint = `${host} may not speak TLS: use --plain-http (or registry.plainHttp)`;
  }
  return new DiginfraError('NETWORK', `cannot reach ${host}: ${code ? `${code}: ` : ''}${detail}`, {
    cause: err,
    ...(hint !== undefined && { hint }),
  });
}

/**
 * An undici dispatcher with TLS settings, timeouts and the proxy variables of `env`
 * (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). Shared by the registry transport and index downloads.
 */
export function createDispatcher(opts: { insecure?: boolean; ca?: string; connectTimeoutMs: number; readTimeoutMs: number; env: NodeJS.ProcessEnv }): Dispatcher {
  // An explicit `ca` replaces Node's trust store; extra CAs are meant to add to it (public blob
  // storage behind a private registry's redirects must still verify). 'default' is what Node trusts
  // without options: its bundle plus NODE_EXTRA_CA_CERTS (and the system store with --use-system-ca).
  // node:tls is loaded here only when needed: a plain-HTTP command never loads it (~3 ms).
  const tls = {
    rejectUnauthorized: opts.insecure !== true,
    ...(opts.ca !== undefined && { ca: [...process.getBuiltinModule('node:tls').getCACertificates('default'), opts.ca] }),
  };
  const common = {
    connect: { ...tls, timeout: opts.connectTimeoutMs },
    headersTimeout: opts.readTimeoutMs,
    bodyTimeout: opts.readTimeoutMs,
    keepAliveTimeout: 30_000,
  };
  const env = opts.env;
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k]);
  if (!proxied) return new Agent(common);
  return envHttpProxyAgent({
    ...common,
    requestTls: tls,
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
  } as Parameters<typeof envHttpProxyAgent>[0]);
}

export class Transport {
  readonly #dispatchers = new Map<string, Dispatcher>();
  /** Closes of dispatchers replaced by reloadTls(), each waiting for the requests still on it. */
  readonly #retiring = new Set<Promise<void>>();
  readonly #options: TransportOptions;
  readonly #retry: RetryPolicy;

  constructor(options: TransportOptions = {}) {
    this.#options = options;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  get retryPolicy(): RetryPolicy {
    return this.#retry;
  }

  /** The longest silence allowed for headers and between body chunks (registry.timeouts.read). */
  get readTimeoutMs(): number {
    return this.#options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  }

  settings(registry: string): HostSettings {
    const s = this.#options.hostSettings?.(registry) ?? {};
    return { plainHttp: s.plainHttp ?? false, insecureSkipTlsVerify: s.insecureSkipTlsVerify ?? false, ...s };
  }

  /** Base URL for a registry's API, e.g. `https://ghcr.io`. Mirrors replace the host here. */
  baseUrl(registry: string): string {
    const s = this.settings(registry);
    const host = s.mirror ?? apiHost(registry);
    return `${s.plainHttp ? 'http' : 'https'}://${host}`;
  }

  #dispatcher(registry: string): Dispatcher {
    const existing = this.#dispatchers.get(registry);
    if (existing) return existing;
    const s = this.settings(registry);
    const dispatcher = createDispatcher({
      insecure: s.insecureSkipTlsVerify,
      ...(s.caFile !== undefined && { ca: readCaFile(s.caFile) }),
      connectTimeoutMs: this.#options.connectTimeoutMs ?? 15_000,
      readTimeoutMs: this.readTimeoutMs,
      env: this.#options.env ?? process.env,
    });
    this.#dispatchers.set(registry, dispatcher);
    return dispatcher;
  }

  /** Whether `url` goes to the mirror of `registry` (for metrics: how much the mirror takes off the origin). */
  #sourceOf(registry: string, url: string): ExchangeInfo['source'] {
    const mirror = this.settings(registry).mirror;
    return mirror !== undefined && hostOf(url).toLowerCase() === mirror.toLowerCase() ? mirror : 'origin';
  }

  /** One exchange, no retries. The caller must consume or dump the body. */
  async once(registry: string, req: HttpRequest): Promise<HttpResponse> {
    const headers = { 'user-agent': this.#options.userAgent ?? 'diginfractl', ...req.headers };
    const signal = this.#signal(req);
    signal?.throwIfAborted();
    const report = (status: ExchangeInfo['status']): void => {
      if (this.#options.onResponse) this.#options.onResponse({ registry, method: req.method, status, source: this.#sourceOf(registry, req.url) });
    };
    try {
      const res = await request(req.url, {
        method: req.method,
        headers,
        body: req.body?.() ?? null,
        dispatcher: this.#dispatcher(registry),
        ...(signal !== undefined && { signal }),
      });
      report(res.statusCode);
      return res;
    } catch (err) {
      report('error');
      throw err;
    }
  }

  /**
   * Sends with retries on 429, 5xx and dropped connections. A 429 waits `Retry-After` when given
   * (up to maxRetryAfterMs), else backs off exponentially.
   */
  async send(registry: string, req: HttpRequest): Promise<HttpResponse> {
    const policy = this.#retry;
    const attempts = req.noRetry ? 1 : policy.attempts;
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.once(registry, req);
      } catch (err) {
        const signal = this.#signal(req);
        if (signal?.aborted) throw signal.reason;
        if (attempt + 1 < attempts && isRetryableNetworkError(err)) {
          await pause(backoffDelay(attempt, policy), signal);
          continue;
        }
        throw networkError(new URL(req.url).host, err);
      }
      if (!RETRY_STATUSES.has(res.statusCode) || attempt + 1 >= attempts) return res;
      const retryAfter = parseRetryAfter(res.headers['retry-after']);
      if (retryAfter !== undefined && retryAfter > policy.maxRetryAfterMs) return res;
      await res.body.dump();
      await pause(retryAfter ?? backoffDelay(attempt, policy), this.#signal(req));
    }
  }

  /** The request's signal, the transport's, or both combined. */
  #signal(req: HttpRequest): AbortSignal | undefined {
    const own = this.#options.signal;
    if (req.signal === undefined || own === undefined) return req.signal ?? own;
    return AbortSignal.any([req.signal, own]);
  }

  /**
   * After CA bundles changed on disk (`caFiles`; every one when omitted): each host that trusts one
   * gets a new dispatcher, which reads the file again, from its next request on. Requests in flight,
   * bodies still streaming included, finish on the old dispatcher, which is closed once they have.
   * Returns the registries whose dispatcher was replaced.
   */
  reloadTls(caFiles?: readonly string[]): string[] {
    const changed = caFiles && new Set(caFiles.map((f) => resolvePath(f)));
    const replaced: string[] = [];
    for (const [registry, dispatcher] of this.#dispatchers) {
      const ca = this.settings(registry).caFile;
      if (changed && (ca === undefined || !changed.has(resolvePath(ca)))) continue;
      this.#dispatchers.delete(registry);
      // close() lets what is queued or running on it finish; only then are its sockets gone.
      const closing = dispatcher.close().catch(() => undefined);
      this.#retiring.add(closing);
      void closing.finally(() => this.#retiring.delete(closing));
      replaced.push(registry);
    }
    return replaced;
  }

  async close(): Promise<void> {
    const all = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all([...all.map((d) => d.close()), ...this.#retiring]);
  }
}

/** A wait between retries that an abort ends at once, with the signal's reason. */
export async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, signal && { signal });
  } catch (err) {
    throw signal?.aborted ? signal.reason : err;
  }
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new DiginfraError('CONFIG_INVALID', `cannot read CA file "${path}": ${(err as Error).message}`, {
      hint: 'point --ca-file (or registry.caFiles) at a readable PEM file',
      cause: err,
    });
  }
}

/** A body read whole, refused past `limit` bytes (the request is dropped there). */
export async function readBodyLimited(res: HttpResponse, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      res.body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface SmallRequest extends Pick<HttpRequest, 'method' | 'url' | 'headers'> {
  body?: string;
}

/**
 * One request for a small answer (a token, credentials) through a short-lived transport, closed after
 * the reply. `what` names the server in the error for a reply over 1 MiB.
 */
export async function sendSmall(
  what: string,
  req: SmallRequest,
  opts: Pick<TransportOptions, 'hostSettings' | 'retry' | 'connectTimeoutMs' | 'readTimeoutMs' | 'userAgent' | 'env'>,
): Promise<{ status: number; contentType: string; body: string }> {
  const transport = new Transport(opts);
  try {
    const res = await transport.send(what, { method: req.method, url: req.url, ...(req.headers && { headers: req.headers }), ...(req.body !== undefined && { body: () => req.body! }) });
    const body = await readBodyLimited(res, 1024 * 1024, () => new DiginfraError('REGISTRY_ERROR', `${what} sent a reply larger than 1 MiB`));
    const type = res.headers['content-type'];
    return { status: res.statusCode, contentType: (Array.isArray(type) ? type[0] : type) ?? '', body: body.toString('utf8') };
  } finally {
    await transport.close();
  }
}

/** `host[:port]` of a URL, for messages; `fallback` (default the text itself) when it does not parse. */
export function hostOf(url: string, fallback: string = url): string {
  try {
    return new URL(url).host;
  } catch {
    return fallback;
  }
}
