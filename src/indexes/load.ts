/**
 * The configured indexes with their entries, read from the cached copies. An index never fetched is
 * fetched now (once); everything else comes from disk, so this is cheap enough for every command.
 */
import { DiginfraError } from '../errors.js';
import type { DiginfraConfig, IndexConfig } from '../config/types.js';
import { cacheRoot, indexCredentialsPath, resolveConfigPath } from '../config/paths.js';
import { readCachedIndex, readSearchRows } from './store.js';
import type { SearchRows } from './search.js';
import type { LoadedIndex } from './types.js';

export interface LoadIndexesOptions {
  /** Only these indexes (by name), in configured order. Unknown names throw INDEX_NOT_FOUND. */
  only?: string[];
  /** Where the credentials of private indexes live (default: beside the resolved config file). */
  credentialsPath?: string;
  /**
   * Called for an index that cannot be loaded (never fetched, and the fetch failed); the index is
   * then skipped. Without it, the error is thrown.
   */
  onError?: (index: string, err: unknown) => void;
  /** Told when an index is fetched for the first time (e.g. to log it). */
  onFetch?: (index: string, url: string) => void;
  /**
   * Never fetch: an index with no cached copy (or one of another URL) is left out. For signature
   * policies, which must not cost a network round trip, or hang an offline node, on every pull.
   */
  cachedOnly?: boolean;
  env?: Record<string, string | undefined>;
}

function selected(config: DiginfraConfig, only: string[] | undefined): IndexConfig[] {
  if (!only || only.length === 0) return config.indexes;
  const unknown = only.filter((n) => !config.indexes.some((ix) => ix.name === n));
  if (unknown.length > 0) throw notConfigured(unknown, config);
  return config.indexes.filter((ix) => only.includes(ix.name));
}

/**
 * First use of an index: fetch, validate and cache it (loads the HTTP client and YAML parser). The
 * caller then reads the cached copy, as for any other index.
 */
async function fetchFirst(config: DiginfraConfig, ix: IndexConfig, cacheDir: string, opts: LoadIndexesOptions): Promise<void> {
  opts.onFetch?.(ix.name, ix.url);
  const { refreshIndex, tlsForIndex } = await import('./refresh.js');
  const { readIndexCredentials } = await import('./credentials.js');
  const credsPath = opts.credentialsPath ?? indexCredentialsPath(resolveConfigPath({ env: opts.env ?? process.env }));
  const credentials = (await readIndexCredentials(credsPath))[ix.name];
  await refreshIndex(ix, {
    cacheDir,
    conditional: false,
    ...(credentials !== undefined && { credentials }),
    ...tlsForIndex(config.registry, ix.url),
    ...(opts.env !== undefined && { env: opts.env }),
  });
}

/** The cache just written by fetchFirst is missing: the cache dir changed under us. */
function lostCache(ix: IndexConfig, cacheDir: string): DiginfraError {
  return new DiginfraError('IO', `index "${ix.name}": the cached copy under ${cacheDir} could not be read back after fetching it`, {
    hint: 'check that the cache dir is writable and not shared with a process that removes files',
  });
}

async function eachIndex<T>(
  config: DiginfraConfig,
  cacheDir: string,
  opts: LoadIndexesOptions,
  load: (ix: IndexConfig) => Promise<T | undefined>,
): Promise<T[]> {
  const results = await Promise.all(
    selected(config, opts.only).map(async (ix): Promise<T | undefined> => {
      try {
        return await load(ix);
      } catch (err) {
        if (!opts.onError) throw err;
        opts.onError(ix.name, err);
        return undefined;
      }
    }),
  );
  return results.filter((r): r is Awaited<T> => r !== undefined);
}

/**
 * Reads the cached copies of the configured indexes, in configured order (the order that decides
 * which index wins a name). `cacheDir` is the cache root (default `cacheRoot(config)`).
 */
export async function loadIndexes(config: DiginfraConfig, cacheDir: string = cacheRoot(config), opts: LoadIndexesOptions = {}): Promise<LoadedIndex[]> {
  return eachIndex(config, cacheDir, opts, async (ix) => {
    let cached = await readCachedIndex(cacheDir, ix.name);
    if ((!cached || cached.meta.url !== ix.url) && opts.cachedOnly) return undefined;
    if (!cached || cached.meta.url !== ix.url) {
      await fetchFirst(config, ix, cacheDir, opts);
      cached = await readCachedIndex(cacheDir, ix.name);
      if (!cached) throw lostCache(ix, cacheDir);
    }
    return { name: ix.name, url: ix.url, entries: cached.entries, fetchedAt: cached.meta.fetchedAt, checkedAt: cached.meta.checkedAt };
  });
}

/** The search rows of the configured indexes (see `searchRows`): the fast path of `artifact search`. */
export async function loadSearchRows(config: DiginfraConfig, cacheDir: string = cacheRoot(config), opts: LoadIndexesOptions = {}): Promise<SearchRows[]> {
  return eachIndex(config, cacheDir, opts, async (ix) => {
    let cached = await readSearchRows(cacheDir, ix.name);
    if (!cached || cached.meta.url !== ix.url) {
      await fetchFirst(config, ix, cacheDir, opts);
      cached = await readSearchRows(cacheDir, ix.name);
      if (!cached) throw lostCache(ix, cacheDir);
    }
    return { index: ix.name, rows: cached.rows };
  });
}

export function notConfigured(names: string[], config: DiginfraConfig): DiginfraError {
  const list = config.indexes.map((i) => i.name);
  return new DiginfraError(
    'INDEX_NOT_FOUND',
    `${names.length === 1 ? 'index' : 'indexes'} ${names.map((n) => `"${n}"`).join(', ')} ${names.length === 1 ? 'is' : 'are'} not configured${list.length > 0 ? ` (configured: ${list.join(', ')})` : ' (no index is configured)'}`,
    { hint: 'run "diginfractl index list" to see the configured indexes, or "diginfractl index add NAME URL" to add one' },
  );
}
