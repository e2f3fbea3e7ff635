/**
 * The running engine's version, for `requirements` checks: fixed (`--engine-version`) or read from a
 * versions URL (`--engine-versions-url`) that answers JSON such as `{"engine_version": "0.40.0"}`. The
 * URL is read when a check needs it, never at start-up, so the agent starts before the engine does
 * and notices an engine upgrade without a restart. It is read like a registry host: through the proxy
 * variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), with the CA bundle `registry.caFiles` names for its
 * host, and its answer is refused past 64 KiB.
 */
import { readFile } from 'node:fs/promises';
import { DiginfraError, messageOf } from '../errors.js';
import { engineVersionOfDocument } from '../resolve/index.js';
import type { readBodyLimited as ReadBodyLimited, request } from '../registry/index.js';

// The HTTP code is loaded when a versions URL is read: `artifact list` and `artifact rollback`, which
// import this folder's public surface, never read one.
const lazyHttp = async () => {
  const [{ request }, { createDispatcher, readBodyLimited }] = await Promise.all([import('../registry/undici.js'), import('../registry/transport.js')]);
  return { request, createDispatcher, readBodyLimited };
};

export interface EngineVersionSource {
  /** The version, undefined when neither a version nor a URL is configured. Throws when the URL fails. */
  get(): Promise<string | undefined>;
  /** Text for logs: the fixed version or the URL. */
  readonly describe: string;
}

const TIMEOUT_MS = 5_000;
/** A versions document is a few hundred bytes; anything past this is refused, never buffered. */
export const MAX_VERSIONS_BYTES = 64 * 1024;

/**
 * Reads the engine version from a versions document; undefined when it holds none. The semver field
 * (`engine_version_semver`) wins; a bare number `N` (Falco's `engine_version`, what engines before
 * 0.35 reported) means `0.N.0` (src/resolve/engine-version.ts).
 */
export function engineVersionFrom(doc: unknown): string | undefined {
  return engineVersionOfDocument(doc)?.version;
}

export interface EngineVersionOptions {
  version?: string;
  url?: string;
  timeoutMs?: number;
  /** PEM CA bundle trusted for the URL's host, besides the system CAs (registry.caFiles). */
  caFile?: string;
  /** Skip TLS verification (registry.insecureSkipTlsVerify names the URL's host). */
  insecure?: boolean;
  /** Proxy variables (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); default process.env. */
  env?: NodeJS.ProcessEnv;
  maxBytes?: number;
  /** What get() answers while the URL cannot be read (instead of throwing), and where it comes from. */
  fallback?: { version: string; from: string };
  /** Told each time the fallback is used, with why the URL failed (a warning: never silent). */
  onFallback?: (err: unknown, version: string, from: string) => void;
}

async function readCa(path: string, url: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new DiginfraError('CONFIG_INVALID', `engine versions URL ${url}: cannot read CA file "${path}": ${messageOf(err)}`, {
      cause: err,
      hint: 'fix registry.caFiles in the config',
    });
  }
}

/** The body as text, refused past `max` bytes (by Content-Length, or while reading). */
async function readCapped(res: Awaited<ReturnType<typeof request>>, max: number, url: string, readBodyLimited: typeof ReadBodyLimited): Promise<string> {
  const tooLarge = (): DiginfraError =>
    new DiginfraError('NETWORK', `engine versions URL ${url} answered more than ${Math.round(max / 1024)} KiB; a versions document is a small JSON object`, {
      hint: 'check --engine-versions-url (follow.engineVersionsUrl): it must answer JSON such as {"engine_version": "0.40.0"}',
    });
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.body.destroy();
    throw tooLarge();
  }
  return (await readBodyLimited(res, max, tooLarge)).toString('utf8');
}

export function engineVersionSource(opts: EngineVersionOptions): EngineVersionSource {
  if (opts.version !== undefined) {
    const version = opts.version;
    return { get: async () => version, describe: version };
  }
  if (opts.url === undefined) return { get: async () => undefined, describe: 'unknown' };
  const url = opts.url;
  const read = urlReader(url, opts);
  const fallback = opts.fallback;
  if (!fallback) return { describe: url, get: read };
  return {
    describe: `${url} (else ${fallback.version})`,
    async get() {
      try {
        return await read();
      } catch (err) {
        // The engine may not be up yet (its own pod starts it after us): check against what is known.
        opts.onFallback?.(err, fallback.version, fallback.from);
        return fallback.version;
      }
    },
  };
}

/** Reads the engine version from `url`; throws NETWORK when it cannot. */
function urlReader(url: string, opts: EngineVersionOptions): () => Promise<string> {
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  const max = opts.maxBytes ?? MAX_VERSIONS_BYTES;
  return async () => {
    const ca = opts.caFile !== undefined ? await readCa(opts.caFile, url) : undefined;
    const { request, createDispatcher, readBodyLimited } = await lazyHttp();
    // Read rarely (a check that needs the engine version): a dispatcher per read, closed after it,
    // with the proxy variables and the TLS settings the registry hosts get.
    const dispatcher = createDispatcher({
      ...(opts.insecure === true && { insecure: true }),
      ...(ca !== undefined && { ca }),
      connectTimeoutMs: timeoutMs,
      readTimeoutMs: timeoutMs,
      env: opts.env ?? process.env,
    });
    let text: string;
    try {
      const res = await request(url, {
        method: 'GET',
        headers: { accept: 'application/json' },
        dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        throw new Error(`answered ${res.statusCode}`);
      }
      text = await readCapped(res, max, url, readBodyLimited);
    } catch (err) {
      if (err instanceof DiginfraError) throw err;
      throw new DiginfraError('NETWORK', `engine versions URL ${url}: ${messageOf(err)}`, {
        cause: err,
        hint: 'the current files are kept until the engine version can be read',
      });
    } finally {
      void dispatcher.destroy().catch(() => undefined);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new DiginfraError('NETWORK', `engine versions URL ${url} did not answer JSON`);
    }
    const version = engineVersionFrom(doc);
    if (version === undefined) throw new DiginfraError('NETWORK', `engine versions URL ${url} answered no engine version ("engine_version_semver" or "engine_version"): ${text.slice(0, 200)}`);
    return version;
  };
}
