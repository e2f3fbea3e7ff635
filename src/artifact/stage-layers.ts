/**
 * An artifact's layers extracted into a new staging dir inside their destination: the first step of
 * `repo pull`, `artifact install` and `artifact follow`, each of which then moves the files in its own
 * way. The staging dir is on the destination's filesystem (moving a file in is a rename) and
 * dot-named (the engine never loads it); the destination itself is not changed. A layer listed twice
 * is extracted once, and a later layer's file replaces an earlier one's, as in OCI images.
 */
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { pipeline, Transform, type Readable } from 'node:stream';
import { DiginfraError, messageOf } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import type { ArtifactSource, Descriptor } from '../registry/index.js';
import { makeStagingDir, removeDir, type StagedFile } from '../util/index.js';
import { extractLayer } from './extract-layer.js';

/** Default cap on the uncompressed size of one artifact's layers. */
export const DEFAULT_MAX_LAYER_BYTES = 2 * 1024 * 1024 * 1024;

/** What staging needs of a resolved artifact: where its layers come from, and its name for errors. */
export interface LayeredArtifact {
  ref: OciReference;
  layers: readonly Descriptor[];
  config: { name: string; version: string };
}

export interface StageLayersOptions {
  /** Cap on the uncompressed total of the files (default DEFAULT_MAX_LAYER_BYTES, 2 GiB). */
  maxBytes?: number | undefined;
  /** Mode of every staged file (0755 plugins, 0644 rules); default: the mode in the archive. */
  mode?: number | undefined;
  /** File names refused (UNSAFE_ARCHIVE): the install's own bookkeeping files. */
  reserved?: ReadonlySet<string> | undefined;
  /** A local, verified copy of `layer` (a blob cache), read instead of downloading it; undefined: download. */
  layerFile?: ((layer: Descriptor) => Promise<string | undefined>) | undefined;
  /** After each chunk of a downloaded layer (never of a local copy): the chunk's size and the layer's bytes so far. */
  onBytes?: ((layer: Descriptor, chunk: number, total: number) => void) | undefined;
  /** A downloaded layer is verified (its digest checked while streaming) and extracted. */
  onDownloaded?: ((layer: Descriptor) => void) | undefined;
  /** The staging dir, as soon as it exists (to keep a sweep from taking it for a leftover). */
  onStaging?: ((staging: string) => void) | undefined;
  /** Abandons staging (downloads and extraction stop, the staging dir is removed); rejects with its reason. */
  signal?: AbortSignal | undefined;
}

export interface StagedLayers {
  /** The staging dir inside `dest`; the caller removes it (removeDir) once the files are moved. */
  staging: string;
  /** Files staged, relative to `staging` (and to `dest`), in the order the layers first gave them. */
  files: StagedFile[];
}

/** A new staging dir inside `dest`, which is created when missing (IO error naming it when it cannot be). */
export async function stagingDirIn(dest: string): Promise<string> {
  try {
    await mkdir(dest, { recursive: true });
  } catch (err) {
    throw new DiginfraError('IO', `cannot create ${dest}: ${messageOf(err)}`, { cause: err });
  }
  return makeStagingDir(dest);
}

/** Each layer once, in order: an artifact may list the same blob twice. */
export function uniqueLayers(layers: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return layers.filter((l) => (seen.has(l.digest) ? false : (seen.add(l.digest), true)));
}

/** `source` passed through unchanged, reporting each chunk and the running total; errors of either side reach the result. */
function countedBytes(source: Readable, onBytes: (chunk: number, total: number) => void): Readable {
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      onBytes(chunk.length, total);
      cb(null, chunk);
    },
  });
  pipeline(source, counter, () => undefined);
  return counter;
}

/** The bytes of `layer`: its local copy when `layerFile` has one, else the registry's (counted when asked). */
async function openLayer(client: Pick<ArtifactSource, 'openBlob'>, artifact: LayeredArtifact, layer: Descriptor, opts: StageLayersOptions): Promise<{ stream: Readable; downloaded: boolean }> {
  const local = await opts.layerFile?.(layer);
  if (local !== undefined) return { stream: createReadStream(local, opts.signal && { signal: opts.signal }), downloaded: false };
  const blob = await client.openBlob(artifact.ref, layer, { signal: opts.signal });
  const onBytes = opts.onBytes;
  return { stream: onBytes ? countedBytes(blob, (chunk, total) => onBytes(layer, chunk, total)) : blob, downloaded: true };
}

/**
 * Extracts every layer of `artifact` (once each) into a new staging dir inside `dest` (created when
 * missing). The files' total is capped by `maxBytes` across layers; a name in `reserved` is refused.
 * On any failure (a digest mismatch, an unsafe archive, the network, `signal`) the staging dir is
 * removed and the error thrown; `dest` is as it was.
 */
export async function stageLayers(client: Pick<ArtifactSource, 'openBlob'>, artifact: LayeredArtifact, dest: string, opts: StageLayersOptions = {}): Promise<StagedLayers> {
  const staging = await stagingDirIn(dest);
  opts.onStaging?.(staging);
  try {
    const files = new Map<string, number>();
    let budget = opts.maxBytes ?? DEFAULT_MAX_LAYER_BYTES;
    for (const layer of uniqueLayers(artifact.layers)) {
      opts.signal?.throwIfAborted();
      const { stream, downloaded } = await openLayer(client, artifact, layer, opts);
      const extracted = await extractLayer(stream, staging, { maxBytes: budget });
      if (downloaded) opts.onDownloaded?.(layer);
      for (const f of extracted) {
        budget -= f.size;
        if (opts.reserved?.has(f.rel)) {
          throw new DiginfraError('UNSAFE_ARCHIVE', `${artifact.config.name} ${artifact.config.version} ships a file named ${f.rel}, which diginfractl reserves for itself`);
        }
        files.set(f.rel, opts.mode ?? f.mode);
      }
    }
    return { staging, files: [...files].map(([rel, mode]) => ({ rel, mode })) };
  } catch (err) {
    await removeDir(staging);
    // An abort surfaces as whatever the stream died of (a local read's AbortError): report its reason.
    throw opts.signal?.aborted ? opts.signal.reason : err;
  }
}
