/**
 * Reading artifacts: resolve a reference to the manifest for one platform, read its config, and
 * extract its layers safely into a directory.
 */
import { DiginfraError } from '../errors.js';
import { formatReference, withDigest, type OciReference } from '../reference/index.js';
import { type ArtifactSource, isIndexMediaType, isManifestMediaType, type Descriptor, type ImageIndex, type ImageManifest } from '../registry/index.js';
import { chooseFromIndex, type Platform } from '../platform/index.js';
import { placeFiles, removeDir } from '../util/index.js';
import { artifactLayers, checkLayerTypes, parseArtifactConfig, type ArtifactConfig } from './format.js';
import { stageLayers } from './stage-layers.js';

export interface ResolvedArtifact {
  /** The reference as asked, pinned to the digest of what the tag pointed at (index or manifest). */
  ref: OciReference & { digest: string };
  /** Digest of the platform manifest actually used. */
  manifestDigest: string;
  manifest: ImageManifest;
  config: ArtifactConfig;
  type: string;
  /** Set when the reference named an image index: the platform chosen and every platform offered. */
  platform?: Platform;
  platforms?: Platform[];
  layers: Descriptor[];
}

/** Parses a fetched manifest JSON as an image manifest, with a clear error for anything else. */
function asManifest(json: Record<string, unknown>, where: string): ImageManifest {
  const m = json as unknown as ImageManifest;
  if (!m.config || !Array.isArray(m.layers)) throw new DiginfraError('ARTIFACT_INVALID', `${where} is not an image manifest`);
  return m;
}

/**
 * Resolves `ref` to one artifact. An image index is narrowed to `platform`; when it has no such entry
 * the error lists what exists.
 */
export async function resolveArtifact(client: ArtifactSource, ref: OciReference, platform: Platform): Promise<ResolvedArtifact> {
  const name = formatReference(ref);
  const top = await client.fetchManifest(ref);
  const pinned = { ...withDigest(ref, top.descriptor.digest), digest: top.descriptor.digest };
  let manifestJson = top.json;
  let manifestDigest = top.descriptor.digest;
  let chosen: Platform | undefined;
  let platforms: Platform[] | undefined;
  if (isIndexMediaType(top.descriptor.mediaType)) {
    const index = top.json as unknown as ImageIndex;
    const { entry: match, offered } = chooseFromIndex(index, platform, name);
    platforms = offered;
    chosen = match.platform;
    const fetched = await client.fetchManifest(withDigest(ref, match.digest));
    manifestJson = fetched.json;
    manifestDigest = fetched.descriptor.digest;
  } else if (!isManifestMediaType(top.descriptor.mediaType)) {
    throw new DiginfraError('MEDIA_TYPE_UNSUPPORTED', `${name} has media type ${top.descriptor.mediaType}, which is not an image manifest or index`);
  }
  const manifest = asManifest(manifestJson, name);
  const { type, layers } = artifactLayers(manifest);
  if (!type || layers.length === 0) {
    throw new DiginfraError('MEDIA_TYPE_UNSUPPORTED', `${name} is not a diginfra artifact (config media type ${manifest.config.mediaType})`, {
      hint: 'diginfractl reads artifacts pushed with `diginfractl repo push`; is this a container image?',
    });
  }
  // Here, so that pull, install and follow (which all resolve through this function) refuse it alike.
  checkLayerTypes(type, layers, name);
  const configBytes = await client.readBlob(ref, manifest.config);
  let rawConfig: unknown;
  try {
    rawConfig = JSON.parse(configBytes.toString('utf8'));
  } catch {
    throw new DiginfraError('ARTIFACT_INVALID', `${name}: config blob is not JSON`);
  }
  const config = parseArtifactConfig(rawConfig, name);
  return {
    ref: pinned,
    manifestDigest,
    manifest,
    config,
    type,
    layers,
    ...(chosen !== undefined && { platform: chosen }),
    ...(platforms !== undefined && { platforms }),
  };
}

/**
 * Extracts every layer into a staging dir inside `dest`, then moves the files in. A digest mismatch,
 * an unsafe archive or a network failure leaves `dest` exactly as it was.
 * `layerFile` may supply a cached copy of a layer (by digest) instead of the registry.
 */
export async function extractArtifact(
  client: ArtifactSource,
  artifact: ResolvedArtifact,
  dest: string,
  opts: {
    maxBytes?: number;
    skipIdentical?: boolean;
    layerFile?: (layer: Descriptor) => Promise<string | undefined>;
    /** Mode of every file; default: the mode in the archive. */
    mode?: number;
    /**
     * Progress of each downloaded layer (not of cached ones): the bytes so far, then `done` once the
     * layer is verified and extracted.
     */
    onProgress?: (layer: Descriptor, bytes: number, done: boolean) => void;
    /** Abandons the pull before any file is placed: downloads stop, the staging dir is removed. */
    signal?: AbortSignal;
  } = {},
): Promise<{ files: string[]; placed: string[]; unchanged: string[] }> {
  const progress = opts.onProgress;
  const { staging, files } = await stageLayers(client, artifact, dest, {
    maxBytes: opts.maxBytes,
    mode: opts.mode,
    layerFile: opts.layerFile,
    signal: opts.signal,
    ...(progress && {
      onBytes: (layer, _chunk, total) => progress(layer, total, false),
      onDownloaded: (layer) => progress(layer, layer.size, true),
    }),
  });
  try {
    // Once files start moving they all move: a pull is interrupted before, never half placed.
    opts.signal?.throwIfAborted();
    const result = await placeFiles(staging, files, dest, { skipIdentical: opts.skipIdentical ?? true });
    return { files: files.map((f) => f.rel), ...result };
  } finally {
    await removeDir(staging);
  }
}
