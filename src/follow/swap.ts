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
 * A kill (even -9) in the middle is settled at the next start by its intent record (swapFiles).
 */
import { copyFile, mkdir, utimes } from 'node:fs/promises';
import { dirname, join, normalize, relative, resolve, sep } from 'node:path';
import { DiginfraError, messageOf } from '../errors.js';
import { type ResolvedArtifact, stageLayers, stagingDirIn, type StagedLayers } from '../artifact/index.js';
import { BlobCache } from '../content/index.js';
import { RESERVED } from '../install/index.js';
import { backoffDelay, BrokenDownloadError, isRetryableNetworkError, networkError, pause, type Descriptor, type RegistryClient } from '../registry/index.js';
import { placeFileSets, removeDir, sweepStaleStaging, writeFileAtomic, type StagedFile } from '../util/index.js';

export type { StagedFile };

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

/**
 * Downloads every layer of `artifact` and extracts it into a new staging dir inside `dest`. `dest` is
 * not touched otherwise. On failure, or when `signal` aborts (the agent stops), the download stops,
 * the staging dir is removed and the error (the signal's reason) thrown.
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
  opts: { mode: number; maxBytes?: number; onBytes?: (n: number) => void; cacheDir?: string; onStaging?: (staging: string) => void; signal?: AbortSignal },
): Promise<Staged> {
  const cache = opts.cacheDir !== undefined ? new BlobCache(opts.cacheDir) : undefined;
  const onBytes = opts.onBytes;
  const once = (): Promise<StagedLayers> =>
    stageLayers(client, artifact, dest, {
      mode: opts.mode,
      maxBytes: opts.maxBytes,
      reserved: RESERVED,
      onStaging: opts.onStaging,
      signal: opts.signal,
      ...(cache && { layerFile: (layer: Descriptor) => cache.lookup(layer).catch(() => undefined) }),
      ...(onBytes && { onBytes: (_layer: Descriptor, chunk: number) => onBytes(chunk) }),
    });
  const { staging, files } = await withDownloadRetries(client, artifact, once, opts.signal);
  if (files.length === 0) {
    await removeDir(staging);
    throw new DiginfraError('ARTIFACT_INVALID', `${artifact.config.name} ${artifact.config.version} ships no files`);
  }
  return { dest, staging, files };
}

/**
 * Runs `stage` again after a download that broke or went silent (the connection's error is one a
 * request would be retried for), within the client's retry budget (`registry.timeouts.attempts`), as
 * ingest does for `artifact install`: a stalled blob costs a check about read x attempts. Each try
 * stages afresh (stageLayers removed the failed try's staging dir); an abort is never retried.
 */
async function withDownloadRetries(client: RegistryClient, artifact: ResolvedArtifact, stage: () => Promise<StagedLayers>, signal: AbortSignal | undefined): Promise<StagedLayers> {
  const policy = client.transport.retryPolicy;
  for (let attempt = 0; ; attempt++) {
    try {
      return await stage();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const broken = err instanceof BrokenDownloadError;
      if (!isRetryableNetworkError(broken ? err.cause : err)) throw err;
      if (attempt + 1 >= policy.attempts) throw broken ? err : networkError(artifact.ref.registry, err);
      await pause(backoffDelay(attempt, policy), signal);
    }
  }
}

/** Copies kept files (a version copy in the state dir) into a new staging dir inside `dest`. */
export async function stageFromDir(fromDir: string, files: readonly StagedFile[], dest: string): Promise<Staged> {
  const staging = await stagingDirIn(dest);
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

/**
 * Moves the staged files over the live ones (placeFileSets: fsync, one rename per file, identical
 * files left alone, dirs fsynced) and deletes `obsolete` files (relative to `dest`) the new version
 * does not ship, as ONE change that survives a kill: before the first rename an intent record is
 * written in `dest` (util/fs/intent.ts), and `state` (the follow state that records the new version)
 * is written last, as the change's commit. A kill before that is undone, after it completed, by
 * recoverInterruptedChanges at the next start of `artifact follow` or `artifact install`; any other
 * failure puts every file back. The staging dir is left for the caller to remove.
 */
export async function swapFiles(staged: Staged, obsolete: readonly string[] = [], state?: { path: string; content: string }): Promise<SwapResult> {
  const dest = resolve(staged.dest);
  const files = staged.files.map((f) => ({ rel: safeRel(f.rel), mode: f.mode }));
  const keep = new Set(files.map((f) => f.rel));
  const stale = obsolete.map(safeRel).filter((r) => !keep.has(r));
  const result = await placeFileSets([{ stagingDir: staged.staging, files, destDir: dest }], {
    skipIdentical: true,
    remove: stale.map((r) => join(dest, r)),
    intent: { dir: dest, ...(state !== undefined && { commit: state }) },
    ...(state !== undefined && { beforeCommit: () => writeFileAtomic(state.path, state.content, { mode: 0o644 }) }),
  });
  const { placed, unchanged } = result.sets[0]!;
  return { placed, unchanged, removed: result.removed.map((p) => relative(dest, p)) };
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
