/**
 * The configured indexes with their entries, read from the cached copies. An index never fetched is
 * fetched now (once); everything else comes from disk, so this is cheap enough for every command.
 * An index whose first fetch fails is skipped, and not tried again for a while (unreachable.ts).
 */
import { DiginfraError, isDiginfraError } from '../errors.js';
import { type DiginfraConfig, type IndexConfig, cacheRoot, indexCredentialsPath, resolveConfigPath } from '../config/index.js';
import { readCachedIndex, readSearchRows } from './store.js';
import type { SearchRows } from './search.js';
import type { LoadedIndex } from './types.js';
import { IndexSkipped, rememberedFailure, skippedIndexWarning } from './unreachable.js';

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
  /**
   * Keep a skipped index in the result, without entries and with the reason in `skipped`, so that a
   * name no index answers can say which were skipped and why (resolve-name.ts). Needs `onError`.
   */
  keepSkipped?: boolean;
  env?: Record<string, string | undefined>;
  /** Clock of the remembered failures (default Date.now). */
  now?: () => number;
}

/** What a logger offers the commands' loading options. */
export interface IndexLoadLog {
  info(message: string): void;
  warn(message: string): void;
}

/**
 * The options every command that reads indexes passes, so that they behave alike: an index that
 * cannot be loaded is skipped and kept as skipped (for the messages of a lookup nothing answers), and
 * a first fetch is told. The failure is warned about once, by the command that met it (saying when it
 * is tried again and how to silence it); while it is remembered, commands skip the index without a
 * word, so an offline `artifact search` pays neither a request nor the logger's start-up. `log` is
 * asked for only when there is something to say (a command's logger is created on first use).
 */
export function commandLoadOptions(log: () => IndexLoadLog, credentialsPath: string): LoadIndexesOptions {
  return {
    credentialsPath,
    keepSkipped: true,
    onFetch: (name, url) => log().info(`fetching index "${name}" from ${url} (first use)`),
    onError: (name, err) => {
      if (err instanceof IndexSkipped && err.record !== undefined) return;
      log().warn(skippedIndexWarning(name, err));
    },
  };
}

function selected(config: DiginfraConfig, only: string[] | undefined): IndexConfig[] {
  if (!only || only.length === 0) return config.indexes;
  const unknown = only.filter((n) => !config.indexes.some((ix) => ix.name === n));
  if (unknown.length > 0) throw notConfigured(unknown, config);
  return config.indexes.filter((ix) => only.includes(ix.name));
}

/**
 * How long a first use waits for a connection to the index host (DNS and TCP/TLS). An offline machine
 * whose packets go nowhere would otherwise wait the whole request timeout (30 s) before skipping the
 * index; a reachable host connects in well under this. `index update` keeps the full timeout.
 */
export const FIRST_USE_CONNECT_TIMEOUT_MS = 5_000;

/**
 * First use of an index: fetch, validate and cache it (loads the HTTP client and YAML parser). The
 * caller then reads the cached copy, as for any other index.
 */
async function fetchFirst(config: DiginfraConfig, ix: IndexConfig, cacheDir: string, opts: LoadIndexesOptions): Promise<void> {
  // A failure remembered from an earlier command: skipped without a request, until it expires.
  const now = opts.now ?? Date.now;
  const record = rememberedFailure(cacheDir, ix.name, ix.url, now());
  if (record) throw new IndexSkipped(ix.name, ix.url, { record });
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
    connectTimeoutMs: FIRST_USE_CONNECT_TIMEOUT_MS,
    now: () => new Date(now()),
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
  skipped?: (ix: IndexConfig, reason: IndexSkipped) => T,
): Promise<T[]> {
  const results = await Promise.all(
    selected(config, opts.only).map(async (ix): Promise<T | undefined> => {
      try {
        return await load(ix);
      } catch (err) {
        const reason = err instanceof IndexSkipped ? err : new IndexSkipped(ix.name, ix.url, { cause: err });
        if (!opts.onError) throw err instanceof IndexSkipped ? remembered(err) : err;
        opts.onError(ix.name, reason);
        return opts.keepSkipped ? skipped?.(ix, reason) : undefined;
      }
    }),
  );
  return results.filter((r): r is Awaited<T> => r !== undefined);
}

/** A remembered failure thrown to a caller that skips nothing: the original error's code, and when it is tried again. */
function remembered(skip: IndexSkipped): DiginfraError {
  return new DiginfraError(skipCode(skip), skippedIndexWarning(skip.index, skip).replace(/^index "[^"]*" skipped: /, `index "${skip.index}" `), {
    hint: `run "diginfractl index update ${skip.index}" to try it again now`,
  });
}

/** The code of the error that made an index skipped (INDEX_FETCH_FAILED when it had none). */
export function skipCode(skip: IndexSkipped): DiginfraError['code'] {
  return isDiginfraError(skip.cause) ? skip.cause.code : (skip.record?.code ?? 'INDEX_FETCH_FAILED');
}

/**
 * Reads the cached copies of the configured indexes, in configured order (the order that decides
 * which index wins a name). `cacheDir` is the cache root (default `cacheRoot(config)`).
 */
export async function loadIndexes(config: DiginfraConfig, cacheDir: string = cacheRoot(config), opts: LoadIndexesOptions = {}): Promise<LoadedIndex[]> {
  return eachIndex<LoadedIndex>(config, cacheDir, opts, async (ix) => {
    let cached = await readCachedIndex(cacheDir, ix.name);
    if ((!cached || cached.meta.url !== ix.url) && opts.cachedOnly) return undefined;
    if (!cached || cached.meta.url !== ix.url) {
      await fetchFirst(config, ix, cacheDir, opts);
      cached = await readCachedIndex(cacheDir, ix.name);
      if (!cached) throw lostCache(ix, cacheDir);
    }
    return { name: ix.name, url: ix.url, entries: cached.entries, fetchedAt: cached.meta.fetchedAt, checkedAt: cached.meta.checkedAt };
  }, (ix, reason) => ({ name: ix.name, url: ix.url, entries: [], skipped: { message: reason.message, code: skipCode(reason) } }));
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
