/**
 * The blob cache: layers by digest under `<cache root>/blobs/<algorithm>/<hex>`, where the cache root
 * is the config's `cacheDir` or `$XDG_CACHE_HOME/diginfractl`. A blob is written through a temp file
 * and renamed (RegistryClient.downloadBlob), so a cached file is always complete; it is still checked
 * against its digest before use, and re-downloaded when it does not match.
 *
 * A cached file's mtime is its last use (set when it is written and each time it is found), so the
 * cache can be pruned by age: `artifact install` removes what no install has used for `cacheMaxAge`
 * (default 30 days) after each successful install, so a node's cache does not grow with every version
 * ever installed.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DiginfraError } from '../errors.js';
import { STALE_STAGING_MS } from '../util/atomic-fs.js';
import type { OciReference } from '../reference/reference.js';
import type { FetchedManifest, RegistryClient } from '../registry/client.js';
import { MANIFEST_ACCEPT, type Descriptor } from '../registry/media-types.js';

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
/** Temp files of unfinished writes in a blobs/<algorithm> dir: downloadBlob's and put()'s. */
const TEMP_RE = /^(\.[a-f0-9]+\.partial-\d+-[a-z0-9]+|[a-f0-9]+\.\d+\.[a-z0-9]+\.tmp)$/;

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
    const [algorithm, hex] = desc.digest.split(':');
    const hash = createHash(algorithm!);
    try {
      await pipeline(createReadStream(path), hash);
    } catch {
      return undefined;
    }
    if (hash.digest('hex') !== hex) {
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

  /** Stores small content under its digest (temp file, fsync, rename). Best effort: errors are ignored. */
  async put(digest: string, data: Buffer): Promise<void> {
    const path = this.path(digest);
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await mkdir(dirname(path), { recursive: true });
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch {
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /**
   * Removes the temp files of writes that never finished (a crash, a kill): the download temp files
   * (`.<hex>.partial-<pid>-<random>`, RegistryClient.downloadBlob) and put()'s (`<hex>.<pid>.<random>.tmp`)
   * not modified for `olderThanMs` (default 10 min; a download in progress keeps its file's mtime
   * fresh). Best effort; returns the paths removed.
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
  async fetch(client: RegistryClient, ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, onBytes?: (n: number) => void): Promise<BlobFetch> {
    const cached = await this.lookup(desc);
    if (cached) return { path: cached, downloaded: false };
    const path = this.path(desc.digest);
    await client.downloadBlob(ref, desc, path, onBytes);
    return { path, downloaded: true };
  }
}

/**
 * The client as `resolveArtifact` sees it, with content-addressed reads going through the cache:
 * manifests fetched by digest and config blobs come from the cache when present, and whatever is
 * fetched is kept. A manifest fetched by tag always asks the registry (the tag may have moved), so a
 * re-install costs one manifest request per artifact, and a `--frozen` re-install none at all.
 */
export function withManifestCache(client: RegistryClient, cache: BlobCache): RegistryClient {
  const fetchManifest = async (ref: OciReference, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> => {
    if (ref.digest) {
      const bytes = await cache.get(ref.digest);
      if (bytes) {
        try {
          const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
          if (typeof json.mediaType === 'string' && accept.includes(json.mediaType)) {
            return { descriptor: { mediaType: json.mediaType, digest: ref.digest, size: bytes.length }, bytes, json };
          }
        } catch {
          // not JSON: ask the registry
        }
      }
    }
    const fetched = await client.fetchManifest(ref, accept);
    await cache.put(fetched.descriptor.digest, fetched.bytes);
    return fetched;
  };
  const readBlob = async (ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes?: number): Promise<Buffer> => {
    const cached = await cache.get(desc.digest);
    if (cached && cached.length === desc.size) return cached;
    const data = await client.readBlob(ref, desc, maxBytes);
    await cache.put(desc.digest, data);
    return data;
  };
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'fetchManifest') return fetchManifest;
      if (prop === 'readBlob') return readBlob;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
