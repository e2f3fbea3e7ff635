/**
 * The cached copies of indexes, under `<cache>/indexes/`:
 * - `<name>.yaml`: the bytes as fetched;
 * - `<name>.json`: metadata (validators for conditional GETs, times, counts, sha256 of the YAML);
 * - `<name>.entries.json`: the validated entries as JSON, so nothing re-parses YAML;
 * - `<name>.search.jsonl`: one JSON array per line with the searchable fields only
 *   ([name, type, registry, repository, description, keywords]) after a header line, so
 *   `artifact search` scans text and parses only the lines that can match;
 * - `<name>.unreachable.json`: a failed fetch of an index with no copy here, remembered (unreachable.ts).
 * Each file is replaced atomically; the metadata is written last and ties the others together by
 * sha256, so a derived file that does not match it is rebuilt from the YAML copy. The derived files
 * are written while the YAML is parsed (DerivedFiles), into temp files renamed in only on commit.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DiginfraError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../config/index.js';
import type { IndexCacheMeta, IndexEntry } from './types.js';

export function indexesDir(cacheDir: string): string {
  return join(cacheDir, 'indexes');
}

export function cachePaths(cacheDir: string, name: string): { yaml: string; meta: string; entries: string; search: string; unreachable: string } {
  const dir = indexesDir(cacheDir);
  return {
    yaml: join(dir, `${name}.yaml`),
    meta: join(dir, `${name}.json`),
    entries: join(dir, `${name}.entries.json`),
    search: join(dir, `${name}.search.jsonl`),
    // A failed fetch remembered (unreachable.ts).
    unreachable: join(dir, `${name}.unreachable.json`),
  };
}

/** Hex sha256; node:crypto is loaded only when a hash is needed (never on the search path). */
export async function sha256(text: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(text).digest('hex');
}

/** One row of the search file: the searchable fields of an entry as a JSON array. */
function searchRow(e: IndexEntry): string {
  return JSON.stringify([e.name, e.type, e.registry, e.repository, e.description, e.keywords]);
}

function searchHeader(hash: string): string {
  return JSON.stringify({ sha256: hash, format: 'diginfractl-search/1' });
}

/** The search file's text: a header line tying it to the YAML copy, then one row per entry. */
export function searchFileText(hash: string, entries: readonly IndexEntry[]): string {
  const lines = [searchHeader(hash)];
  for (const e of entries) lines.push(searchRow(e));
  return `${lines.join('\n')}\n`;
}

type AtomicFile = import('../util/fs/write-atomic.js').AtomicFile;

/** The one error of a cached copy that cannot be written (the copy in place, if any, is unchanged). */
function cacheWriteFailed(cacheDir: string, name: string, err: unknown): DiginfraError {
  if (err instanceof DiginfraError && err.message.startsWith(`index "${name}": cannot write the cached copy`)) return err;
  return new DiginfraError('IO', `index "${name}": cannot write the cached copy under ${indexesDir(cacheDir)}: ${messageOf(err)}`, {
    cause: err,
    hint: 'check that the cache dir is writable and has free space (cacheDir in the config, or $XDG_CACHE_HOME); the previous copy, if any, stays in use',
  });
}

/**
 * The derived cache files of one index (`<name>.entries.json`, `<name>.search.jsonl`), written entry
 * by entry while the YAML is read, into temp files beside them: neither the entries nor the files'
 * bytes are kept in memory. Nothing in the cache changes until `commit`; `discard`
 * (a bad index, a failed config save) removes the temp files.
 */
export class DerivedFiles {
  count = 0;

  private constructor(
    /** The sha256 of the YAML these files derive from (their header, and the metadata's). */
    readonly sha256: string,
    private readonly entries: AtomicFile,
    private readonly search: AtomicFile,
    private readonly failed: (err: unknown) => DiginfraError,
  ) {}

  /** Opens both temp files of index `name`; `hash` is the sha256 of the YAML they derive from. */
  static async open(cacheDir: string, name: string, hash: string): Promise<DerivedFiles> {
    // Loaded on demand: `artifact search`, which imports this module, never writes.
    const [{ openAtomicFile }, { sweepStaleStaging }] = await Promise.all([import('../util/fs/write-atomic.js'), import('../util/fs/staging.js')]);
    // Temp files a killed run left here (older than a run takes) go first: housekeeping, never fatal.
    await sweepStaleStaging(indexesDir(cacheDir));
    const paths = cachePaths(cacheDir, name);
    const failed = (err: unknown) => cacheWriteFailed(cacheDir, name, err);
    const entries = await openAtomicFile(paths.entries).catch((err: unknown) => {
      throw failed(err);
    });
    const search = await openAtomicFile(paths.search).catch(async (err: unknown) => {
      await entries.abort();
      throw failed(err);
    });
    const files = new DerivedFiles(hash, entries, search, failed);
    await files.guard(async () => {
      await entries.write(`{"sha256":${JSON.stringify(hash)},"entries":[`);
      await search.write(`${searchHeader(hash)}\n`);
    });
    return files;
  }

  /** Adds one validated entry. */
  async add(e: IndexEntry): Promise<void> {
    // Each entry's JSON is what JSON.stringify({ sha256, entries }) writes for it, commas included.
    const json = JSON.stringify(e);
    const row = `${searchRow(e)}\n`;
    await this.guard(async () => {
      await this.entries.write(this.count === 0 ? json : `,${json}`);
      await this.search.write(row);
    });
    this.count++;
  }

  /** Runs `f`; on failure both temp files go. */
  private async guard(f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (err) {
      await this.discard();
      throw this.failed(err);
    }
  }

  /**
   * Publishes both files: `{"sha256":...,"entries":[...]}` (byte for byte what JSON.stringify gives
   * for the same entries) and the search file. The metadata, written after, is what ties them to the
   * YAML copy (readers check the sha256), so a crash between the two renames is repaired on read.
   */
  async commit(): Promise<void> {
    await this.guard(async () => {
      await this.entries.write(']}');
      await this.entries.commit();
      await this.search.commit();
    });
  }

  /** Removes the temp files; the cache stays as it was. Never throws. */
  async discard(): Promise<void> {
    await this.entries.abort();
    await this.search.abort();
  }
}

// The small cache files and the search rows are read synchronously: `artifact search` reads nothing
// else, and a read on the thread pool costs it more (threads started, a round trip per 512 KiB) than
// the read itself.
function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The metadata of a cached index, or undefined when it was never fetched (or the cache is unreadable). */
export async function readCacheMeta(cacheDir: string, name: string): Promise<IndexCacheMeta | undefined> {
  const meta = readJson<IndexCacheMeta>(cachePaths(cacheDir, name).meta);
  return meta && typeof meta.sha256 === 'string' && typeof meta.url === 'string' ? meta : undefined;
}

/**
 * The cached entries of an index, or undefined when it was never fetched. Uses the JSON form when it
 * matches the metadata; otherwise re-parses the YAML copy and rewrites the derived files.
 */
export async function readCachedIndex(cacheDir: string, name: string): Promise<{ meta: IndexCacheMeta; entries: IndexEntry[] } | undefined> {
  const meta = await readCacheMeta(cacheDir, name);
  if (!meta) return undefined;
  const paths = cachePaths(cacheDir, name);
  const stored = readJson<{ sha256?: string; entries?: IndexEntry[] }>(paths.entries);
  if (stored && stored.sha256 === meta.sha256 && Array.isArray(stored.entries)) return { meta, entries: stored.entries };
  let text: string;
  try {
    text = readFileSync(paths.yaml, 'utf8');
  } catch {
    return undefined;
  }
  const { forEachIndexEntry } = await import('./parse.js');
  const entries: IndexEntry[] = [];
  const hash = await sha256(text);
  let derived: DerivedFiles | undefined = await DerivedFiles.open(cacheDir, name, hash).catch(() => undefined);
  try {
    await forEachIndexEntry(text, name, async (e) => {
      entries.push(e);
      await derived?.add(e).catch(() => {
        derived = undefined; // a cache that cannot be rewritten only costs a re-parse next time
      });
    });
  } catch (err) {
    await derived?.discard();
    throw err;
  }
  const fixed = { ...meta, sha256: hash, size: Buffer.byteLength(text), entries: entries.length };
  await derived?.commit().catch(() => undefined);
  if (hash !== meta.sha256) await writeFileAtomic(paths.meta, `${JSON.stringify(fixed, null, 2)}\n`).catch(() => undefined);
  return { meta: fixed, entries };
}

/**
 * The search rows of a cached index (the text after the header line), or undefined when it was never
 * fetched. Rebuilds the search file from the entries when it is missing or stale.
 */
export async function readSearchRows(cacheDir: string, name: string): Promise<{ meta: IndexCacheMeta; rows: Buffer } | undefined> {
  const meta = await readCacheMeta(cacheDir, name);
  if (!meta) return undefined;
  const paths = cachePaths(cacheDir, name);
  // Bytes, not text: searchRows scans them as they are and decodes only the lines that match.
  let bytes: Buffer | undefined;
  try {
    bytes = readFileSync(paths.search);
  } catch {
    bytes = undefined;
  }
  if (bytes !== undefined) {
    const nl = bytes.indexOf(0x0a);
    try {
      const header = JSON.parse(bytes.toString('utf8', 0, nl < 0 ? bytes.length : nl)) as { sha256?: string };
      if (nl >= 0 && header.sha256 === meta.sha256) return { meta, rows: bytes.subarray(nl + 1) };
    } catch {
      // rebuilt below
    }
  }
  const full = await readCachedIndex(cacheDir, name);
  if (!full) return undefined;
  const rebuilt = searchFileText(full.meta.sha256, full.entries);
  await writeFileAtomic(paths.search, rebuilt).catch(() => undefined);
  return { meta: full.meta, rows: Buffer.from(rebuilt.slice(rebuilt.indexOf('\n') + 1)) };
}

/** Stores a freshly fetched index: YAML copy, derived files, then metadata (the commit point). */
export async function writeCachedIndex(
  cacheDir: string,
  name: string,
  text: string,
  derived: DerivedFiles,
  meta: Omit<IndexCacheMeta, 'sha256' | 'size' | 'entries' | 'name'>,
): Promise<IndexCacheMeta> {
  const paths = cachePaths(cacheDir, name);
  const full: IndexCacheMeta = { name, ...meta, entries: derived.count, sha256: derived.sha256, size: Buffer.byteLength(text) };
  try {
    await writeFileAtomic(paths.yaml, text);
    await derived.commit();
    await writeFileAtomic(paths.meta, `${JSON.stringify(full, null, 2)}\n`);
    // A copy in hand: a failure remembered from an earlier fetch no longer applies (unreachable.ts).
    rmSync(paths.unreachable, { force: true });
  } catch (err) {
    await derived.discard();
    throw cacheWriteFailed(cacheDir, name, err);
  }
  return full;
}

/** Records a successful conditional check (304, or an unchanged file). */
export async function touchCacheMeta(cacheDir: string, meta: IndexCacheMeta, checkedAt: string): Promise<IndexCacheMeta> {
  const next = { ...meta, checkedAt };
  await writeFileAtomic(cachePaths(cacheDir, meta.name).meta, `${JSON.stringify(next, null, 2)}\n`);
  return next;
}

export async function removeCachedIndex(cacheDir: string, name: string): Promise<void> {
  const paths = cachePaths(cacheDir, name);
  // Metadata first: without it the others are never read.
  // node:fs/promises loads on demand: `artifact search`, which imports this module, never needs it.
  const { rm } = await import('node:fs/promises');
  for (const p of [paths.meta, paths.search, paths.entries, paths.yaml, paths.unreachable]) await rm(p, { force: true });
}
