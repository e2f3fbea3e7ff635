/**
 * Publishing: checks every layer by the extractor's rules, packs files into layers, writes config and
 * manifest (or one manifest per platform and an image index over them), then tags. Blobs go first and
 * tags last, so a tag never points at something incomplete.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import semver from 'semver';
import { parse as parseYaml } from 'yaml';
import { DiginfraError } from '../errors.js';
import { formatReference, withDigest, withTag, type OciReference } from '../reference/index.js';
import { bufferBlob, type Descriptor, fileBlob, formatPlatform, type ImageIndex, OCI_INDEX, OCI_MANIFEST, type Platform, type RegistryClient } from '../registry/index.js';
import { packLayer } from './archive.js';
import { safeRelative } from './extract-checks.js';
import { checkLayer } from './extract-layer.js';
import { DEFAULT_MAX_LAYER_BYTES } from './stage-layers.js';
import {
  ANNOTATION_CREATED,
  ANNOTATION_TITLE,
  ANNOTATION_VERSION,
  RULESFILE,
  buildManifest,
  checkConfigForPush,
  configMediaType,
  floatingTags,
  layerMediaType,
  type ArtifactConfig,
  type Dependency,
  type VersionedName,
} from './format.js';

export interface PushOptions {
  type: string;
  version: string;
  /** Artifact name in the config; defaults to the last path component of the repository. */
  name?: string;
  files: string[];
  /** When given, one per file: file i is the build for platform i, and an image index is pushed. */
  platforms?: Platform[];
  dependencies?: Dependency[];
  requirements?: VersionedName[];
  annotations?: Record<string, string>;
  addFloatingTags?: boolean;
  /** Another repository of the same registry that may already hold the blobs (cross-repository mount). */
  mountFrom?: string;
  /** Called for each step, for progress output. */
  onProgress?: (event: { step: 'blob' | 'manifest' | 'tag'; detail: string }) => void;
  /**
   * Called with the pushed digest before any tag points at it: a signature made here is in place
   * before a follower can see the tag (repo push --sign-key).
   */
  beforeTags?: (pushed: OciReference & { digest: string }) => Promise<void>;
  /** Called when a floating tag is left alone because it already points at a newer version. */
  onWarning?: (message: string) => void;
}

export interface PushResult {
  /** The pushed reference, with the digest of the manifest (or index) the tags point at. */
  ref: OciReference & { digest: string };
  mediaType: string;
  tags: string[];
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

async function isGzip(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf.equals(GZIP_MAGIC);
  } finally {
    await fh.close();
  }
}

/**
 * Reads a rules file's `required_engine_version` item, as the engine declares it. Integer versions of
 * old engines (`required_engine_version: 9`) mean 0.9.0.
 */
export async function readRequiredEngineVersion(path: string): Promise<string | undefined> {
  let doc: unknown;
  try {
    doc = parseYaml(await readFile(path, 'utf8'));
  } catch (err) {
    throw new DiginfraError('USAGE', `rules file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc)) return undefined;
  for (const item of doc) {
    if (item && typeof item === 'object' && 'required_engine_version' in item) {
      const v = (item as Record<string, unknown>).required_engine_version;
      if (typeof v === 'number' && Number.isInteger(v)) return `0.${v}.0`;
      if (typeof v === 'string' && semver.valid(semver.coerce(v))) return semver.valid(v) ?? semver.coerce(v)!.version;
    }
  }
  return undefined;
}

export async function pushArtifact(client: RegistryClient, ref: OciReference, opts: PushOptions): Promise<PushResult> {
  if (ref.digest) throw new DiginfraError('USAGE', `push to a tag, not a digest: ${formatReference(ref)}`);
  if (opts.files.length === 0) throw new DiginfraError('USAGE', 'repo push needs at least one file');
  if (opts.platforms && opts.platforms.length !== opts.files.length) {
    throw new DiginfraError('USAGE', `${opts.platforms.length} --platform flags for ${opts.files.length} files: give one platform per file, in the same order`);
  }
  const keys = (opts.platforms ?? []).map(formatPlatform);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice) throw new DiginfraError('USAGE', `platform ${twice} given twice`);
  const config = await buildConfig(ref, opts);
  for (const file of opts.files) await checkLayerInput(file, await isArchiveFile(file));
  const work = await mkdtemp(join(tmpdir(), 'diginfractl-push-'));
  try {
    const configBytes = Buffer.from(JSON.stringify(config));
    const configBlob = bufferBlob(configBytes);
    await client.pushBlob(ref, configBlob, pushOpts(opts));
    const configDesc: Descriptor = { mediaType: configMediaType(opts.type), digest: configBlob.digest, size: configBlob.size };
    const annotations = {
      [ANNOTATION_VERSION]: config.version,
      [ANNOTATION_CREATED]: new Date().toISOString(),
      ...opts.annotations,
    };

    const layers: Descriptor[] = [];
    for (const [i, file] of opts.files.entries()) {
      layers.push(await pushLayer(client, ref, opts, file, join(work, `layer-${i}.tar.gz`)));
    }

    let top: { bytes: Buffer; mediaType: string };
    if (opts.platforms) {
      const entries: Descriptor[] = [];
      for (const [i, platform] of opts.platforms.entries()) {
        const manifest = buildManifest({ type: opts.type, config: configDesc, layer: layers[i]!, annotations });
        const bytes = Buffer.from(JSON.stringify(manifest));
        const desc = await client.pushManifest(withDigest(ref, bufferBlob(bytes).digest), bytes, OCI_MANIFEST);
        opts.onProgress?.({ step: 'manifest', detail: `${formatPlatform(platform)} ${desc.digest}` });
        entries.push({ ...desc, artifactType: configMediaType(opts.type), platform });
      }
      const index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, artifactType: configMediaType(opts.type), manifests: entries, annotations };
      top = { bytes: Buffer.from(JSON.stringify(index)), mediaType: OCI_INDEX };
    } else {
      const manifest = { ...buildManifest({ type: opts.type, config: configDesc, layer: layers[0]!, annotations }), layers };
      top = { bytes: Buffer.from(JSON.stringify(manifest)), mediaType: OCI_MANIFEST };
    }

    const primary = ref.tag ?? config.version;
    if (opts.beforeTags) {
      const byDigest = await client.pushManifest(withDigest(ref, bufferBlob(top.bytes).digest), top.bytes, top.mediaType);
      await opts.beforeTags({ ...withTag(ref, primary), digest: byDigest.digest });
    }
    const tags = [primary];
    if (opts.addFloatingTags) tags.push(...(await movableFloatingTags(client, ref, config.version, opts.onWarning)));
    let digest = '';
    for (const tag of tags) {
      const desc = await client.pushManifest(withTag(ref, tag), top.bytes, top.mediaType);
      digest = desc.digest;
      opts.onProgress?.({ step: 'tag', detail: tag });
    }
    return { ref: { ...withTag(ref, primary), digest }, mediaType: top.mediaType, tags };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function pushOpts(opts: PushOptions): { mountFrom?: string } {
  return opts.mountFrom ? { mountFrom: opts.mountFrom } : {};
}

async function buildConfig(ref: OciReference, opts: PushOptions): Promise<ArtifactConfig> {
  const config: ArtifactConfig = {
    name: opts.name ?? ref.repository.split('/').pop()!,
    version: opts.version,
  };
  if (opts.dependencies?.length) config.dependencies = opts.dependencies;
  const requirements = [...(opts.requirements ?? [])];
  if (opts.type === RULESFILE && !requirements.some((r) => r.name === 'engine_version')) {
    for (const file of opts.files) {
      if (!/\.ya?ml$/i.test(file)) continue;
      const v = await readRequiredEngineVersion(file);
      if (v) {
        requirements.push({ name: 'engine_version', version: v });
        break;
      }
    }
  }
  if (requirements.length) config.requirements = requirements;
  return checkConfigForPush(config);
}

/** Whether `file` is pushed as it is (a .tar.gz) or packed into a layer first. */
async function isArchiveFile(file: string): Promise<boolean> {
  if (!/\.(tar\.gz|tgz)$/i.test(file)) return false;
  try {
    if (!(await isGzip(file))) throw new DiginfraError('USAGE', `${file} is named like a .tar.gz but is not gzip data`);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DiginfraError('USAGE', `file not found: ${file}`);
    if ((err as NodeJS.ErrnoException).code === 'EISDIR') return false;
    throw err;
  }
}

/**
 * Refuses, before anything is uploaded, a layer that every consumer would refuse: a .tar.gz is read
 * through the extractor's own rules (checkLayer: names, links, types, limits), a file to pack has its
 * name checked by the same rule (it becomes the entry's name).
 */
async function checkLayerInput(file: string, archive: boolean): Promise<void> {
  try {
    if (archive) await checkLayer(createReadStream(file), { maxBytes: DEFAULT_MAX_LAYER_BYTES });
    else safeRelative(basename(file));
  } catch (err) {
    if (!(err instanceof DiginfraError) || (err.code !== 'UNSAFE_ARCHIVE' && err.code !== 'ARTIFACT_INVALID')) throw err;
    throw new DiginfraError(err.code, `refusing to push ${file}: ${err.message}`, {
      cause: err,
      hint: 'nothing was pushed: every consumer would refuse this layer; fix the archive (or the file name) and push again',
    });
  }
}

async function pushLayer(client: RegistryClient, ref: OciReference, opts: PushOptions, file: string, packed: string): Promise<Descriptor> {
  let path = file;
  const isArchive = await isArchiveFile(file);
  if (!isArchive) {
    try {
      await packLayer([file], packed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DiginfraError('USAGE', `file not found: ${file}`);
      throw err;
    }
    path = packed;
  }
  const blob = await fileBlob(path);
  const result = await client.pushBlob(ref, blob, pushOpts(opts));
  opts.onProgress?.({ step: 'blob', detail: `${basename(file)} ${blob.digest} (${result})` });
  return {
    mediaType: layerMediaType(opts.type),
    digest: blob.digest,
    size: blob.size,
    annotations: { [ANNOTATION_TITLE]: isArchive ? basename(file) : `${basename(file)}.tar.gz` },
  };
}

/**
 * Floating tags (`1.2`, `1`, `latest`) move to this version only when no newer version of the same
 * line is already published, so a late patch to an old line does not steal `1` or `latest` from 1.3.0.
 */
async function movableFloatingTags(client: RegistryClient, ref: OciReference, version: string, warn?: (m: string) => void): Promise<string[]> {
  let existing: string[] = [];
  try {
    existing = await client.listTags(ref);
  } catch (err) {
    if (!(err instanceof DiginfraError && err.code === 'NOT_FOUND')) throw err;
  }
  const versions = existing.filter((t) => semver.valid(t) && !semver.prerelease(t));
  const candidates = floatingTags(version);
  if (candidates.length) candidates.push('latest');
  return candidates.filter((tag) => {
    const range = tag === 'latest' ? '*' : `${tag}.x`;
    const newer = versions.find((v) => semver.satisfies(v, range) && semver.gt(v, version));
    if (newer) warn?.(`floating tag ${tag} stays on ${newer}, which is newer than ${version}`);
    return !newer;
  });
}
