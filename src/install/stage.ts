/**
 * Staging: an artifact's layers (from the blob cache, downloaded on a miss) extracted into a staging
 * dir inside its destination (same filesystem, so the final move is a rename), then, only when every
 * artifact of an install is staged, moved into place file by file. `follow` uses the same three steps
 * to validate a staged rules file before it replaces the live one.
 */
import { type ResolvedArtifact, stageLayers, uniqueLayers } from '../artifact/index.js';
import type { RegistryClient } from '../registry/index.js';
import { INTENT_NAME, placeFiles, placeFileSets, removeDir, type PlaceFileSetsOptions } from '../util/index.js';
import type { BlobCache } from '../content/index.js';
import { DIR_LOCK_NAME } from './dir-lock.js';
import { LOCKFILE_NAME } from './lockfile.js';

/** Names an artifact may not ship: the install's own bookkeeping files. */
export const RESERVED = new Set([LOCKFILE_NAME, DIR_LOCK_NAME, INTENT_NAME]);

export type BlobEvent =
  | { kind: 'start'; artifact: string; digest: string; size: number; cached: false }
  | { kind: 'bytes'; artifact: string; digest: string; size: number; bytes: number }
  | { kind: 'done'; artifact: string; digest: string; size: number; cached: boolean };

export interface StageOptions {
  /** Mode of every staged file (0755 plugins, 0644 rules); default: the mode in the archive. */
  mode?: number;
  maxBytes?: number;
  /** Blob progress: start/bytes/done for downloads, a single done(cached) for cache hits. */
  onBlob?: (event: BlobEvent) => void;
  /** Label for progress events (default: artifact name and version). */
  label?: string;
  /** Abandons downloads and staging (temp files and the staging dir removed); rejects with its reason. */
  signal?: AbortSignal;
}

export interface StagedArtifact {
  artifact: ResolvedArtifact;
  dest: string;
  /** The staging dir inside `dest`; removed by commitStaged / discardStaged. */
  staging: string;
  /** Files as they will be placed, relative to `dest`. */
  files: { rel: string; mode: number }[];
  /** Blobs downloaded (not from the cache) and their bytes. */
  downloaded: { blobs: number; bytes: number };
}

/** Brings every layer of `artifact` into the cache (downloading only what is missing). */
export async function cacheLayers(
  client: RegistryClient,
  cache: BlobCache,
  artifact: ResolvedArtifact,
  opts: Pick<StageOptions, 'onBlob' | 'label' | 'signal'> = {},
): Promise<{ paths: Map<string, string>; blobs: number; bytes: number }> {
  const label = opts.label ?? `${artifact.config.name} ${artifact.config.version}`;
  const paths = new Map<string, string>();
  let blobs = 0;
  let bytes = 0;
  for (const layer of uniqueLayers(artifact.layers)) {
    const hit = await cache.lookup(layer);
    if (hit) {
      paths.set(layer.digest, hit);
      opts.onBlob?.({ kind: 'done', artifact: label, digest: layer.digest, size: layer.size, cached: true });
      continue;
    }
    opts.onBlob?.({ kind: 'start', artifact: label, digest: layer.digest, size: layer.size, cached: false });
    let seen = 0;
    const got = await cache.fetch(
      client,
      artifact.ref,
      layer,
      (n) => {
        seen += n;
        opts.onBlob?.({ kind: 'bytes', artifact: label, digest: layer.digest, size: layer.size, bytes: seen });
      },
      opts.signal,
    );
    paths.set(layer.digest, got.path);
    if (got.downloaded) {
      blobs++;
      bytes += layer.size;
    }
    opts.onBlob?.({ kind: 'done', artifact: label, digest: layer.digest, size: layer.size, cached: !got.downloaded });
  }
  return { paths, blobs, bytes };
}

/**
 * Downloads (or takes from the cache) every layer of `artifact` and extracts them into a new staging
 * dir inside `dest`. `dest` itself is not changed; on failure the staging dir is removed.
 */
export async function stageArtifact(client: RegistryClient, cache: BlobCache, artifact: ResolvedArtifact, dest: string, opts: StageOptions = {}): Promise<StagedArtifact> {
  const { paths, blobs, bytes } = await cacheLayers(client, cache, artifact, opts);
  // Every layer is in the cache now: staging reads them from there, never from the registry.
  const { staging, files } = await stageLayers(client, artifact, dest, {
    maxBytes: opts.maxBytes,
    mode: opts.mode,
    reserved: RESERVED,
    layerFile: async (layer) => paths.get(layer.digest),
    signal: opts.signal,
  });
  return { artifact, dest, staging, files, downloaded: { blobs, bytes } };
}

/** Moves the staged files into `dest` (rename per file, identical files left alone), then cleans up. */
export async function commitStaged(staged: StagedArtifact): Promise<{ placed: string[]; unchanged: string[] }> {
  try {
    return await placeFiles(staged.staging, staged.files, staged.dest, { skipIdentical: true });
  } finally {
    await removeDir(staged.staging);
  }
}

/**
 * Moves every staged artifact into place ALL OR NOTHING (placeFileSets): the previous version of each
 * replaced file is kept until the end, and a failure anywhere (a rename, a removal in `opts.remove`,
 * `opts.beforeCommit`) puts every file back as it was; with `opts.intent`, a kill is settled by the
 * next run (recover.ts). The staging dirs are removed either way.
 */
export async function commitStagedAll(
  staged: readonly StagedArtifact[],
  opts: Pick<PlaceFileSetsOptions, 'remove' | 'beforeCommit' | 'intent'> = {},
): Promise<{ sets: { placed: string[]; unchanged: string[] }[]; removed: string[] }> {
  try {
    return await placeFileSets(
      staged.map((s) => ({ stagingDir: s.staging, files: s.files, destDir: s.dest })),
      { skipIdentical: true, ...opts },
    );
  } finally {
    for (const s of staged) await removeDir(s.staging).catch(() => undefined);
  }
}

export async function discardStaged(staged: StagedArtifact): Promise<void> {
  await removeDir(staged.staging);
}
