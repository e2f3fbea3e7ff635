/**
 * Manifests and configs through the blob cache: content addressed, so a digest read twice is asked
 * of the registry once.
 */
import type { OciReference } from '../reference/index.js';
import { MANIFEST_ACCEPT, type Descriptor, type FetchedManifest, type RegistryClient } from '../registry/index.js';
import type { BlobCache } from './blob-cache.js';

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
