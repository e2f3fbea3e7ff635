/**
 * The running engine's version, for `requirements` checks: fixed (`--engine-version`) or read from a
 * versions URL (`--engine-versions-url`) that answers JSON such as `{"engine_version": "0.40.0"}`. The
 * URL is read when a check needs it, never at start-up, so the agent starts before the engine does
 * and notices an engine upgrade without a restart.
 */
import { request } from 'undici';
import semver from 'semver';
import { DiginfraError, messageOf } from '../errors.js';

export interface EngineVersionSource {
  /** The version, undefined when neither a version nor a URL is configured. Throws when the URL fails. */
  get(): Promise<string | undefined>;
  /** Text for logs: the fixed version or the URL. */
  readonly describe: string;
}

const TIMEOUT_MS = 5_000;
const KEYS = ['engine_version', 'engineVersion', 'diginfra_engine_version'];

/** Reads the engine version from a versions document; undefined when it holds none. */
export function engineVersionFrom(doc: unknown): string | undefined {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  for (const key of KEYS) {
    const v = (doc as Record<string, unknown>)[key];
    if (typeof v === 'string' && semver.coerce(v)) return v;
    if (typeof v === 'number' && Number.isFinite(v)) return `0.${v}.0`;
  }
  return undefined;
}

export function engineVersionSource(opts: { version?: string; url?: string; timeoutMs?: number }): EngineVersionSource {
  if (opts.version !== undefined) {
    const version = opts.version;
    return { get: async () => version, describe: version };
  }
  if (opts.url === undefined) return { get: async () => undefined, describe: 'unknown' };
  const url = opts.url;
  const timeoutMs = opts.timeoutMs ?? TIMEOUT_MS;
  return {
    describe: url,
    async get() {
      let text: string;
      try {
        const res = await request(url, {
          method: 'GET',
          headers: { accept: 'application/json' },
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`answered ${res.statusCode}`);
      } catch (err) {
        throw new DiginfraError('NETWORK', `engine versions URL ${url}: ${messageOf(err)}`, {
          cause: err,
          hint: 'the current files are kept until the engine version can be read',
        });
      }
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        throw new DiginfraError('NETWORK', `engine versions URL ${url} did not answer JSON`);
      }
      const version = engineVersionFrom(doc);
      if (version === undefined) throw new DiginfraError('NETWORK', `engine versions URL ${url} answered no "engine_version"`);
      return version;
    },
  };
}
