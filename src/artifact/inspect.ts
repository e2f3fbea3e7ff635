/**
 * What `artifact info` shows about one tag: type, version, platforms, dependencies and requirements,
 * read from the registry without choosing a platform.
 */
import { DiginfraError } from '../errors.js';
import { formatReference, withDigest, type OciReference } from '../reference/index.js';
import { type ImageIndex, type ImageManifest, isIndexMediaType, type Platform, type RegistryClient } from '../registry/index.js';
import { artifactLayers, parseArtifactConfig, type ArtifactConfig } from './format.js';

export interface ArtifactSummary {
  ref: OciReference & { digest: string };
  mediaType: string;
  type: string;
  config: ArtifactConfig;
  /** Empty for platform-independent artifacts (a plain manifest). */
  platforms: Platform[];
  annotations: Record<string, string>;
}

export async function inspectArtifact(client: RegistryClient, ref: OciReference): Promise<ArtifactSummary> {
  const top = await client.fetchManifest(ref);
  let manifest: ImageManifest;
  let platforms: Platform[] = [];
  const annotations = ((top.json as { annotations?: Record<string, string> }).annotations ?? {}) as Record<string, string>;
  if (isIndexMediaType(top.descriptor.mediaType)) {
    const index = top.json as unknown as ImageIndex;
    platforms = (index.manifests ?? []).flatMap((m) => (m.platform ? [m.platform] : []));
    const first = index.manifests?.[0];
    if (!first) throw new DiginfraError('ARTIFACT_INVALID', `${formatReference(ref)} is an empty image index`);
    manifest = (await client.fetchManifest(withDigest(ref, first.digest))).json as unknown as ImageManifest;
  } else {
    manifest = top.json as unknown as ImageManifest;
  }
  const { type } = artifactLayers(manifest);
  if (!type || !manifest.config) {
    throw new DiginfraError('MEDIA_TYPE_UNSUPPORTED', `${formatReference(ref)} is not a diginfra artifact (config media type ${manifest.config?.mediaType ?? 'none'})`);
  }
  const config = parseArtifactConfig(JSON.parse((await client.readBlob(ref, manifest.config)).toString('utf8')), formatReference(ref));
  return {
    ref: { ...withDigest(ref, top.descriptor.digest), digest: top.descriptor.digest },
    mediaType: top.descriptor.mediaType,
    type,
    config,
    platforms,
    annotations: { ...(manifest.annotations ?? {}), ...annotations },
  };
}
