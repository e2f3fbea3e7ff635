/**
 * The blob cache: layers by digest under `<cache root>/blobs/<algorithm>/<hex>`, where the cache root
 * is the config's `cacheDir` or `$XDG_CACHE_HOME/diginfractl`. A blob is written through a temp file
 * and renamed (ingest.ts, util/atomic-fs.ts), so a cached file is always complete; it is still checked
 * against its digest before use, and re-downloaded when it does not match.
 *
 * A cached file's mtime is its last use (set when it is written and each time it is found), so the
 * cache can be pruned by age: `artifact install` removes what no install has used for `cacheMaxAge`
 * (default 30 days) after each successful install, so a node's cache does not grow with every version
 * ever installed.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { DiginfraError } from '../errors.js';
import { STALE_STAGING_MS, writeFileAtomic } from '../util/index.js';
import type { OciReference } from '../reference/index.js';
import { type Descriptor, digestParts, fileDigest } from '../registry/index.js';
import { ingestBlob, type BlobReader } from './ingest.js';

const DIGEST_RE = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;
/** The name of a cached entry in a blobs/<algorithm> dir: the hex of its digest. */
const ENTRY_RE = /^([a-f0-9]{64}|[a-f0-9]{128})$/;
/** Default of the config's `cacheMaxAge`. */
export const DEFAULT_CACHE_MAX_AGE_MS = 30 * 24 * 3_600_000;

/** Marks a cached file as used now (its mtime); best effort. */
async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}
/**
 * Temp files of unfinished writes in a blobs/<algorithm> dir: the atomic writers' `.<hex>.tmp-<12 hex>`,
 * and the names earlier versions used (`.<hex>.partial-<pid>-<random>`, `<hex>.<pid>.<random>.tmp`).
 */
const TEMP_RE = /^(\.[a-f0-9]+\.tmp-[0-9a-f]{12}|\.[a-f0-9]+\.partial-\d+-[a-z0-9]+|[a-f0-9]+\.\d+\.[a-z0-9]+\.tmp)$/;

export interface BlobFetch {
  path: string;
  /** False when the blob came from the cache. */
  downloaded: boolean;
}

export class BlobCache {
  /** `<cache root>/blobs`. */
  readonly dir: string;

  constructor(cacheRoot: string) {
    this.dir = join(cacheRoot, 'blobs');
  }

  path(digest: string): string {
    const m = DIGEST_RE.exec(digest);
    if (!m) throw new DiginfraError('DIGEST_MISMATCH', `unsupported digest "${digest}"`);
    return join(this.dir, m[1]!, m[2]!);
  }

  /** The cached file for `desc` when present, of the right size and digest; a bad copy is removed. */
  async lookup(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<string | undefined> {
    const path = this.path(desc.digest);
    // Marked as used first, so a prune running meanwhile (another install) leaves it alone.
    await touch(path);
    try {
      const st = await stat(path);
      if (!st.isFile() || st.size !== desc.size) {
        await rm(path, { force: true });
        return undefined;
      }
    } catch {
      return undefined;
    }
    let actual: string;
    try {
      actual = await fileDigest(path, digestParts(desc.digest).algorithm);
    } catch {
      return undefined;
    }
    if (actual !== desc.digest) {
      await rm(path, { force: true });
      return undefined;
    }
    return path;
  }

  /** Small content (a manifest, a config) by digest, verified; undefined when not cached. */
  async get(digest: string): Promise<Buffer | undefined> {
    await touch(this.path(digest));
    let data: Buffer;
    try {
      data = await readFile(this.path(digest));
    } catch {
      return undefined;
    }
    const [algorithm, hex] = digest.split(':');
    if (createHash(algorithm!).update(data).digest('hex') !== hex) {
      await rm(this.path(digest), { force: true });
      return undefined;
    }
    return data;
  }

  /** Stores small content under its digest (util/atomic-fs.ts's writeFileAtomic). Best effort: errors are ignored. */
  async put(digest: string, data: Buffer): Promise<void> {
    await writeFileAtomic(this.path(digest), data).catch(() => undefined);
  }

  /**
   * Removes the temp files of writes that never finished (a crash, a kill): downloads' and put()'s
   * (TEMP_RE) not modified for `olderThanMs` (default 10 min; a download in progress keeps its file's
   * mtime fresh). Best effort; returns the paths removed.
   */
  async sweepTemp(olderThanMs: number = STALE_STAGING_MS): Promise<string[]> {
    const removed: string[] = [];
    await this.#removeOlder(TEMP_RE, olderThanMs, (path) => removed.push(path));
    return removed;
  }

  /**
   * Removes the cached entries not used for `olderThanMs` (mtime); temp files are sweepTemp's.
   * Best effort: an entry that cannot be removed stays. Returns what was removed.
   */
  async prune(olderThanMs: number): Promise<{ removed: string[]; bytes: number }> {
    const out = { removed: [] as string[], bytes: 0 };
    await this.#removeOlder(ENTRY_RE, olderThanMs, (path, size) => {
      out.removed.push(path);
      out.bytes += size;
    });
    return out;
  }

  /** Removes the files of every blobs/<algorithm> dir whose name matches `name` and whose mtime is older than `olderThanMs`. */
  async #removeOlder(name: RegExp, olderThanMs: number, onRemoved: (path: string, size: number) => void): Promise<void> {
    const cutoff = Date.now() - olderThanMs;
    let algorithms: string[];
    try {
      algorithms = await readdir(this.dir);
    } catch {
      return;
    }
    for (const algorithm of algorithms) {
      const dir = join(this.dir, algorithm);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const file of names) {
        if (!name.test(file)) continue;
        const path = join(dir, file);
        try {
          const st = await lstat(path);
          if (!st.isFile() || st.mtimeMs >= cutoff) continue;
          await rm(path, { force: true });
          onRemoved(path, st.size);
        } catch {
          // gone meanwhile, or not ours to remove
        }
      }
    }
  }

  /** The cached copy, or a fresh download (verified while streaming) into the cache. */
  async fetch(client: BlobReader, ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<BlobFetch> {
    const cached = await this.lookup(desc);
    if (cached) return { path: cached, downloaded: false };
    const path = this.path(desc.digest);
    await ingestBlob(client, ref, desc, path, onBytes, signal);
    return { path, downloaded: true };
  }
}
