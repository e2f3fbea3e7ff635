/**
 * The artifact format: how a rules file or plugin is laid out in an OCI registry. docs/artifact-format.md
 * is the prose version; keep both in step.
 */
import semver from 'semver';
import { DiginfraError } from '../errors.js';
import { OCI_EMPTY, type Descriptor, type ImageManifest } from '../registry/index.js';
import type { Dependency, VersionedName } from '../resolve/index.js';

// Named here too for the modules that read them beside ArtifactConfig; they live in src/resolve and src/platform.
export type { Dependency, VersionedName } from '../resolve/index.js';
export { samePlatform } from '../platform/index.js';

export const ANNOTATION_TITLE = 'org.opencontainers.image.title';
export const ANNOTATION_VERSION = 'org.opencontainers.image.version';
export const ANNOTATION_CREATED = 'org.opencontainers.image.created';
export const ANNOTATION_SOURCE = 'org.opencontainers.image.source';
export const ANNOTATION_DESCRIPTION = 'org.opencontainers.image.description';

/** Known types; any other lower-case word is accepted too, so new types need no code change. */
export const RULESFILE = 'rulesfile';
export const PLUGIN = 'plugin';
const TYPE_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const MEDIA_TYPE_PREFIX = 'application/vnd.cncf.diginfra.';
const CONFIG_RE = /^application\/vnd\.cncf\.diginfra\.([a-z][a-z0-9-]*)\.config\.v1\+json$/;
const LAYER_RE = /^application\/vnd\.cncf\.diginfra\.([a-z][a-z0-9-]*)\.layer\.v1\+tar\.gz$/;

export function checkArtifactType(type: string): string {
  if (!TYPE_RE.test(type)) {
    throw new DiginfraError('USAGE', `artifact type "${type}" must be a lower-case word such as "${RULESFILE}" or "${PLUGIN}"`);
  }
  return type;
}

export function configMediaType(type: string): string {
  return `${MEDIA_TYPE_PREFIX}${checkArtifactType(type)}.config.v1+json`;
}

export function layerMediaType(type: string): string {
  return `${MEDIA_TYPE_PREFIX}${checkArtifactType(type)}.layer.v1+tar.gz`;
}

/** The artifact type named by a config or layer media type, or undefined when it is not ours. */
export function typeFromMediaType(mediaType: string | undefined): string | undefined {
  if (!mediaType) return undefined;
  return CONFIG_RE.exec(mediaType)?.[1] ?? LAYER_RE.exec(mediaType)?.[1];
}

/** The config blob of every artifact. */
export interface ArtifactConfig {
  name: string;
  version: string;
  dependencies?: Dependency[];
  /** e.g. `{name: "engine_version", version: "0.40.0"}`. */
  requirements?: VersionedName[];
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

function field(where: string, obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw new DiginfraError('ARTIFACT_INVALID', `${where}: "${key}" must be a non-empty string`);
  return v;
}

function versionedList(where: string, value: unknown, key: string, withAlternatives: boolean): Dependency[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw new DiginfraError('ARTIFACT_INVALID', `${where}: "${key}" must be a list`);
  return value.map((item, i) => {
    if (!item || typeof item !== 'object') throw new DiginfraError('ARTIFACT_INVALID', `${where}: ${key}[${i}] must be an object`);
    const o = item as Record<string, unknown>;
    const entry: Dependency = { name: field(`${where}: ${key}[${i}]`, o, 'name'), version: field(`${where}: ${key}[${i}]`, o, 'version') };
    if (withAlternatives && o.alternatives !== undefined && o.alternatives !== null) {
      const alts = versionedList(`${where}: ${key}[${i}]`, o.alternatives, 'alternatives', false);
      if (alts && alts.length) entry.alternatives = alts.map(({ name, version }) => ({ name, version }));
    }
    return entry;
  });
}

/** Validates a config blob read from a registry. Unknown fields are ignored (forward compatible). */
export function parseArtifactConfig(raw: unknown, where: string): ArtifactConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new DiginfraError('ARTIFACT_INVALID', `${where}: config is not a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  const config: ArtifactConfig = { name: field(where, o, 'name'), version: field(where, o, 'version') };
  const deps = versionedList(where, o.dependencies, 'dependencies', true);
  if (deps?.length) config.dependencies = deps;
  const reqs = versionedList(where, o.requirements, 'requirements', false);
  if (reqs?.length) config.requirements = reqs.map(({ name, version }) => ({ name, version }));
  return config;
}

/** Checks what `repo push` is about to publish: a valid name and a strict semver version. */
export function checkConfigForPush(config: ArtifactConfig): ArtifactConfig {
  if (!NAME_RE.test(config.name)) {
    throw new DiginfraError('USAGE', `artifact name "${config.name}" must be lower-case letters, digits, ".", "_" or "-"`);
  }
  if (!semver.valid(config.version) || semver.clean(config.version) !== config.version) {
    throw new DiginfraError('USAGE', `--version "${config.version}" must be a strict semver version like 1.2.3`);
  }
  return config;
}

/** Floating tags for a version: 1.2.3 -> ["1.2", "1"]; prereleases get none. */
export function floatingTags(version: string): string[] {
  const v = semver.parse(version);
  if (!v || v.prerelease.length) return [];
  return [`${v.major}.${v.minor}`, `${v.major}`];
}

export function buildManifest(args: {
  type: string;
  config: Descriptor;
  layer: Descriptor;
  annotations: Record<string, string>;
  subject?: Descriptor;
}): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: configMediaType(args.type),
    config: args.config,
    layers: [args.layer],
    ...(args.subject !== undefined && { subject: args.subject }),
    annotations: args.annotations,
  };
}

/** Which of a manifest's layers carry artifact content, and the artifact type they declare. */
export function artifactLayers(manifest: ImageManifest): { type: string | undefined; layers: Descriptor[] } {
  const type = typeFromMediaType(manifest.artifactType) ?? typeFromMediaType(manifest.config?.mediaType);
  const layers = (manifest.layers ?? []).filter((l) => typeFromMediaType(l.mediaType) !== undefined);
  return { type: type ?? typeFromMediaType(layers[0]?.mediaType), layers };
}

/**
 * Refuses an artifact with a layer of another artifact type than its own (a plugin layer in a rules
 * file's manifest): every layer's files go to the artifact type's directory with its file mode, so a
 * plugin would be installed as a rules file. `where` names the artifact in the error.
 */
export function checkLayerTypes(type: string, layers: readonly Descriptor[], where: string): void {
  for (const layer of layers) {
    const layerType = typeFromMediaType(layer.mediaType);
    if (layerType === type) continue;
    throw new DiginfraError('ARTIFACT_INVALID', `${where} is a ${type} artifact, but its layer ${layer.digest} is a ${layerType ?? 'foreign'} layer (${layer.mediaType}); refused, as its files would be installed as a ${type}'s`, {
      hint: 'nothing was written; ask the publisher to push each artifact type as an artifact of its own',
    });
  }
}

export function isEmptyConfig(desc: Descriptor): boolean {
  return desc.mediaType === OCI_EMPTY;
}
