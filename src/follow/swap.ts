/**
 * The hot swap. New content is staged in a dot-named dir inside the target dir (same filesystem, and a
 * name the engine never loads as a rules file), validated there, then each file is moved over the live
 * one with ONE rename(2): a reader that opens the path sees the old bytes or the new bytes, never a
 * mix, a truncated or an empty file. Before its rename each file is fsynced; after the renames the
 * directories are fsynced, so after a crash the disk holds one version or the other too. Identical
 * files are left alone (no rename, no inode change), and files the old version shipped that the new
 * one does not are deleted last.
 *
 * A swap is short (a rename per file) and is never interrupted: shutdown waits for it (follower.ts).
 */
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rm, utimes } from 'node:fs/promises';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { pipeline, Transform, type Readable } from 'node:stream';
import { DiginfraError, messageOf } from '../errors.js';
import { extractLayer } from '../artifact/archive.js';
import { DEFAULT_MAX_LAYER_BYTES, type ResolvedArtifact } from '../artifact/pull.js';
import { BlobCache } from '../install/cache.js';
import { RESERVED } from '../install/stage.js';
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor } from '../registry/media-types.js';
import { fsyncDir, makeStagingDir, placeFiles, removeDir, sweepStaleStaging } from '../util/index.js';

export interface StagedFile {
  /** Path relative to the target dir (and to the staging dir). */
  rel: string;
  mode: number;
}

export interface Staged {
  /** The target dir the files go to. */
  dest: string;
  /** The staging dir inside `dest`; the caller removes it (removeDir) whatever happens. */
  staging: string;
  files: StagedFile[];
}

export interface SwapResult {
  /** Files renamed into place. */
  placed: string[];
  /** Files already identical (same bytes and mode): left alone. */
  unchanged: string[];
  /** Files of the old version the new one no longer ships: deleted. */
  removed: string[];
}

/** A relative path that stays inside its dir (archives are checked by extractLayer; state files here). */
export function safeRel(rel: string): string {
  const n = normalize(rel);
  if (n === '' || n === '.' || n.startsWith(`..${sep}`) || n === '..' || n.startsWith(sep)) {
    throw new DiginfraError('UNSAFE_ARCHIVE', `path "${rel}" leaves its directory`);
  }
  return n;
}

function uniqueLayers(layers: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return layers.filter((l) => (seen.has(l.digest) ? false : (seen.add(l.digest), true)));
}

/** Passes bytes through and reports how many went by (download metrics). */
function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

/**
 * Downloads every layer of `artifact` and extracts it into a new staging dir inside `dest`. `dest` is
 * not touched otherwise. On failure the staging dir is removed and the error thrown.
 *
 * With `cacheDir` (the blob cache of `artifact install`), a layer already in that cache (size and
 * digest verified) is read from there instead of downloaded. The follower only reads the cache: it
 * never adds to it, so a long-running agent does not grow it with every version it sees.
 *
 * A file named like the install's own bookkeeping (`.diginfractl.lock`, `diginfractl.lock`) is
 * refused, as `artifact install` refuses it: swapping it in would replace the lock of the target dir.
 */
export async function stageFromRegistry(
  client: RegistryClient,
  artifact: ResolvedArtifact,
  dest: string,
  opts: { mode: number; maxBytes?: number; onBytes?: (n: number) => void; cacheDir?: string; onStaging?: (staging: string) => void },
): Promise<Staged> {
  await mkdirOrFail(dest);
  const staging = await makeStagingDir(dest);
  opts.onStaging?.(staging);
  try {
    const files = new Map<string, number>();
    let budget = opts.maxBytes ?? DEFAULT_MAX_LAYER_BYTES;
    const cache = opts.cacheDir !== undefined ? new BlobCache(opts.cacheDir) : undefined;
    for (const layer of uniqueLayers(artifact.layers)) {
      const cached = await cache?.lookup(layer).catch(() => undefined);
      let stream: Readable;
      if (cached !== undefined) {
        stream = createReadStream(cached);
      } else {
        const blob = await client.openBlob(artifact.ref, layer);
        stream = opts.onBytes ? pipeline(blob, counter(opts.onBytes), () => undefined) : blob;
      }
      const extracted = await extractLayer(stream, staging, { maxBytes: budget });
      for (const f of extracted) {
        budget -= f.size;
        if (RESERVED.has(f.rel)) {
          throw new DiginfraError('UNSAFE_ARCHIVE', `${artifact.config.name} ${artifact.config.version} ships a file named ${f.rel}, which diginfractl reserves for itself`);
        }
        files.set(f.rel, opts.mode);
      }
    }
    if (files.size === 0) throw new DiginfraError('ARTIFACT_INVALID', `${artifact.config.name} ${artifact.config.version} ships no files`);
    return { dest, staging, files: [...files].map(([rel, mode]) => ({ rel, mode })) };
  } catch (err) {
    await removeDir(staging);
    throw err;
  }
}

/** Copies kept files (a version copy in the state dir) into a new staging dir inside `dest`. */
export async function stageFromDir(fromDir: string, files: readonly StagedFile[], dest: string): Promise<Staged> {
  await mkdirOrFail(dest);
  const staging = await makeStagingDir(dest);
  try {
    for (const f of files) {
      const rel = safeRel(f.rel);
      const to = join(staging, rel);
      await mkdir(dirname(to), { recursive: true });
      await copyFile(join(fromDir, rel), to);
    }
    return { dest, staging, files: files.map((f) => ({ rel: safeRel(f.rel), mode: f.mode })) };
  } catch (err) {
    await removeDir(staging);
    throw new DiginfraError('IO', `cannot stage the kept files of ${fromDir} in ${dest}: ${messageOf(err)}`, { cause: err });
  }
}

async function mkdirOrFail(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new DiginfraError('IO', `cannot create ${dir}: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * Moves the staged files over the live ones (placeFiles: fsync, one rename per file, identical files
 * left alone, dirs fsynced), then deletes `obsolete` files (relative to `dest`) the new version does
 * not ship. The staging dir is left for the caller to remove.
 */
export async function swapFiles(staged: Staged, obsolete: readonly string[] = []): Promise<SwapResult> {
  const dest = resolve(staged.dest);
  const files = staged.files.map((f) => ({ rel: safeRel(f.rel), mode: f.mode }));
  obsolete.forEach(safeRel);
  const { placed, unchanged } = await placeFiles(staged.staging, files, dest, { skipIdentical: true });
  const keep = new Set(files.map((f) => f.rel));
  const stale = obsolete.map(safeRel).filter((r) => !keep.has(r));
  const removed: string[] = [];
  const dirs = new Set<string>();
  try {
    for (const r of stale) {
      await rm(join(dest, r), { force: true });
      removed.push(r);
      dirs.add(dirname(join(dest, r)));
    }
  } catch (err) {
    throw new DiginfraError('IO', `cannot delete a file the new version no longer ships from ${dest}: ${messageOf(err)}`, { cause: err });
  } finally {
    for (const d of dirs) await fsyncDir(d).catch(() => undefined);
  }
  return { placed, unchanged, removed };
}

/**
 * Under the install lock of `dir`, before a swap: removes the staging dirs (and temp files) a crashed
 * run left there more than 10 minutes ago (util sweepStaleStaging, shared with `artifact
 * install`). `live` are staging dirs this process is still using (a slow download or validation of
 * another ref into the same dir): their mtime is refreshed first, so they are never taken for
 * leftovers. Never throws; returns the paths removed.
 */
export async function sweepStaging(dir: string, live: Iterable<string> = []): Promise<string[]> {
  const now = new Date();
  for (const path of live) await utimes(path, now, now).catch(() => undefined);
  return sweepStaleStaging(dir).catch(() => []);
}

export { filesPresent } from './state.js';
export { removeDir };
