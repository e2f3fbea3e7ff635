/**
 * Fetch, validate, store: what `index add`, `index update` and the first use of an index share. The
 * cached copy is replaced only after the new content validated; on any error it stays as it was.
 */
import type { IndexConfig, RegistryConfig } from '../config/index.js';
import { contactedHost, fetchIndex, isLocalIndex } from './fetch.js';
import { forEachIndexEntry } from './parse.js';
import { DerivedFiles, readCacheMeta, sha256, touchCacheMeta, writeCachedIndex } from './store.js';
import type { IndexCacheMeta, IndexCredentials } from './types.js';
import { rememberFailure } from './unreachable.js';

export interface RefreshOptions {
  /** Cache root (`cacheRoot(config)`); copies live in `<cacheDir>/indexes/`. */
  cacheDir: string;
  credentials?: IndexCredentials;
  /** Send the stored validators (ETag / If-Modified-Since); default true. */
  conditional?: boolean;
  /** TLS settings for the index host, from the registry section (see `tlsForIndex`). */
  caFile?: string;
  insecure?: boolean;
  env?: Record<string, string | undefined>;
  maxBytes?: number;
  timeoutMs?: number;
  /** For the connection only (default timeoutMs): a first use keeps it short (load.ts). */
  connectTimeoutMs?: number;
  now?: () => Date;
}

export interface DownloadedIndex {
  text: string;
  /**
   * The validated entries, as the cache files that hold them (not as objects: see parse.ts), written
   * but not yet published: `storeIndex` publishes them, `discardIndex` removes them.
   */
  derived: DerivedFiles;
  /** How many entries. */
  count: number;
  validators: Pick<IndexCacheMeta, 'etag' | 'lastModified' | 'sourceMtimeMs' | 'sourceSize'>;
}

export type RefreshResult =
  | { name: string; status: 'unchanged'; meta: IndexCacheMeta }
  | { name: string; status: 'fetched'; meta: IndexCacheMeta };

/** `registry.caFiles` and `registry.insecureSkipTlsVerify` apply to an https index host too. */
export function tlsForIndex(registry: RegistryConfig, url: string): { caFile?: string; insecure?: boolean } {
  if (isLocalIndex(url)) return {};
  // For gs:// and s3://, the endpoint read from (an emulator's, MinIO's), not the bucket name.
  const host = contactedHost(url);
  if (host === undefined) return {};
  const caFile = registry.caFiles[host] ?? registry.caFiles['*'];
  return { ...(caFile !== undefined && { caFile }), ...(registry.insecureSkipTlsVerify.includes(host) && { insecure: true }) };
}

function fetchOptions(opts: Omit<RefreshOptions, 'cacheDir' | 'conditional'>) {
  return {
    ...(opts.credentials !== undefined && { credentials: opts.credentials }),
    ...(opts.caFile !== undefined && { caFile: opts.caFile }),
    ...(opts.insecure !== undefined && { insecure: opts.insecure }),
    ...(opts.env !== undefined && { env: opts.env }),
    ...(opts.maxBytes !== undefined && { maxBytes: opts.maxBytes }),
    ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
    ...(opts.connectTimeoutMs !== undefined && { connectTimeoutMs: opts.connectTimeoutMs }),
  };
}

/**
 * Fetches and validates without publishing anything (for `index add`, which saves the config first):
 * the cache files are staged beside the cached copy; `storeIndex` or `discardIndex` must follow.
 */
export async function downloadIndex(ix: IndexConfig, opts: Omit<RefreshOptions, 'conditional'>): Promise<DownloadedIndex> {
  const res = await fetchIndex({ name: ix.name, url: ix.url, ...fetchOptions(opts) });
  if (res.status !== 'fetched') throw new Error('unconditional fetch answered unchanged');
  const { text: _t, status: _s, ...validators } = res;
  return { text: res.text, ...(await derive(opts.cacheDir, res.text, ix.name)), validators };
}

/** Drops a downloaded index that will not be stored: the cache stays as it was. */
export async function discardIndex(d: DownloadedIndex): Promise<void> {
  await d.derived.discard();
}

/**
 * Parses and validates, writing the cache files entry by entry as it goes (unpublished until
 * storeIndex): a bad index throws, and leaves nothing behind.
 */
async function derive(cacheDir: string, text: string, index: string): Promise<{ derived: DerivedFiles; count: number }> {
  const derived = await DerivedFiles.open(cacheDir, index, await sha256(text));
  try {
    const count = await forEachIndexEntry(text, index, (e) => derived.add(e));
    return { derived, count };
  } catch (err) {
    await derived.discard();
    throw err;
  }
}

/** Stores a downloaded index as the cached copy. */
export async function storeIndex(cacheDir: string, ix: IndexConfig, d: DownloadedIndex, now = new Date()): Promise<IndexCacheMeta> {
  const at = now.toISOString();
  return writeCachedIndex(cacheDir, ix.name, d.text, d.derived, { url: ix.url, ...d.validators, fetchedAt: at, checkedAt: at });
}

/**
 * Brings the cached copy of one index up to date. With a cached copy of the same URL, asks
 * conditionally: an unchanged index costs one 304 (or one stat for files) and only its check time is
 * recorded. Throws (and leaves the cache untouched) on any fetch or validation error; when there is
 * no cached copy to fall back on, the failure is remembered so that commands skip the index for a
 * while instead of asking again (unreachable.ts).
 */
export async function refreshIndex(ix: IndexConfig, opts: RefreshOptions): Promise<RefreshResult> {
  const now = opts.now ?? (() => new Date());
  const cached = await readCacheMeta(opts.cacheDir, ix.name);
  const hasCopy = cached?.url === ix.url;
  try {
    return await refreshFrom(ix, opts, opts.conditional === false || !hasCopy ? undefined : cached, now);
  } catch (err) {
    if (!hasCopy) await rememberFailure(opts.cacheDir, ix.name, ix.url, err, now().getTime());
    throw err;
  }
}

async function refreshFrom(ix: IndexConfig, opts: RefreshOptions, previous: IndexCacheMeta | undefined, now: () => Date): Promise<RefreshResult> {
  const res = await fetchIndex({
    name: ix.name,
    url: ix.url,
    ...fetchOptions(opts),
    ...(previous?.etag !== undefined && { etag: previous.etag }),
    ...(previous?.lastModified !== undefined && { lastModified: previous.lastModified }),
    ...(previous?.sourceMtimeMs !== undefined && { sourceMtimeMs: previous.sourceMtimeMs }),
    ...(previous?.sourceSize !== undefined && { sourceSize: previous.sourceSize }),
  });
  if (res.status === 'unchanged') {
    return { name: ix.name, status: 'unchanged', meta: await touchCacheMeta(opts.cacheDir, previous!, now().toISOString()) };
  }
  const { text: _t, status: _s, ...validators } = res;
  const stored = await storeIndex(opts.cacheDir, ix, { text: res.text, ...(await derive(opts.cacheDir, res.text, ix.name)), validators }, now());
  return { name: ix.name, status: 'fetched', meta: stored };
}
