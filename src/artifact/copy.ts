/**
 * `repo copy`: an artifact from one repository (or registry) to another, unchanged: every platform of
 * an image index, every blob, the same manifest bytes and so the same digests, then the tag; with
 * `signatures`, its cosign signatures too (the `sha256-<hex>.sig` tag). For mirrors of air-gapped
 * clusters. Blobs pass through the local blob cache (verified while downloaded, streamed, never held in
 * memory), which also makes a second copy of the same artifact cheap; a blob the target already has is
 * not sent, and within one registry the target is asked to mount it.
 */
import { createReadStream } from 'node:fs';
import { DiginfraError, isDiginfraError } from '../errors.js';
import type { BlobCache } from '../install/cache.js';
import { formatReference, withDigest, withTag, type OciReference } from '../reference/reference.js';
import type { FetchedManifest, RegistryClient } from '../registry/client.js';
import { isIndexMediaType, type Descriptor } from '../registry/media-types.js';
import { signatureTag, writeSignatureManifest, type SignatureLayer } from '../signature/cosign.js';

export interface CopyOptions {
  cache: BlobCache;
  /** Also copy the cosign signatures of the artifact's digest. */
  signatures?: boolean;
  onProgress?: (event: { step: 'blob' | 'manifest' | 'tag' | 'signature'; detail: string }) => void;
}

export interface CopyResult {
  /** The target, pinned to the digest (the same as the source's). */
  ref: OciReference & { digest: string };
  /** Whether signatures were found and copied (false when asked and none exist). */
  signatures: boolean;
}

interface ManifestJson {
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export async function copyArtifact(client: RegistryClient, src: OciReference, dst: OciReference, opts: CopyOptions): Promise<CopyResult> {
  if (dst.digest !== undefined && src.digest !== undefined && dst.digest !== src.digest) {
    throw new DiginfraError('USAGE', `cannot copy ${formatReference(src)} to ${formatReference(dst)}: a copy keeps the digest`);
  }
  const top = await client.fetchManifest(src);
  const digest = top.descriptor.digest;
  if (dst.digest !== undefined && dst.digest !== digest) {
    throw new DiginfraError('DIGEST_MISMATCH', `${formatReference(src)} is ${digest}, not ${dst.digest}`);
  }
  const sameRegistry = src.registry === dst.registry;
  const copyBlob = async (desc: Descriptor): Promise<void> => {
    // Nothing is downloaded for a blob the target has, or (within one registry) can mount.
    if (await client.blobExists(dst, desc.digest)) return opts.onProgress?.({ step: 'blob', detail: `${desc.digest} exists` });
    if (sameRegistry && src.repository !== dst.repository && (await client.mountBlob(dst, desc.digest, src.repository))) {
      return opts.onProgress?.({ step: 'blob', detail: `${desc.digest} mounted` });
    }
    const { path, downloaded } = await opts.cache.fetch(client, src, desc);
    const how = await client.pushBlob(dst, { digest: desc.digest, size: desc.size, open: () => createReadStream(path) });
    opts.onProgress?.({ step: 'blob', detail: `${desc.digest} ${how}${downloaded ? '' : ' (from the cache)'}` });
  };
  /** Everything `m` refers to, then `m` itself, by digest: the target never holds a dangling reference. */
  const copyTree = async (m: FetchedManifest): Promise<void> => {
    const json = m.json as ManifestJson;
    if (isIndexMediaType(m.descriptor.mediaType)) {
      for (const entry of json.manifests ?? []) await copyTree(await client.fetchManifest(withDigest(src, entry.digest)));
    } else {
      for (const desc of [...(json.config ? [json.config] : []), ...(json.layers ?? [])]) await copyBlob(desc);
    }
    await client.pushManifest(withDigest(dst, m.descriptor.digest), m.bytes, m.descriptor.mediaType);
    opts.onProgress?.({ step: 'manifest', detail: m.descriptor.digest });
  };
  await copyTree(top);

  // Signatures before the tag, so a follower of the target never sees it unsigned.
  let signatures = false;
  if (opts.signatures) {
    const tag = signatureTag(digest);
    let sig: FetchedManifest | undefined;
    try {
      sig = await client.fetchManifest(withTag(src, tag));
    } catch (err) {
      if (!isDiginfraError(err, 'NOT_FOUND')) throw err;
    }
    if (sig) {
      await copyTree(sig);
      // Signatures the target already has (its owner's own key, say) are kept: the layers are merged.
      const at = withTag(dst, tag);
      const extra = await signaturesOnlyAt(client, at, sig);
      if (extra.length > 0) await writeSignatureManifest(client, at, [...((sig.json as { layers?: SignatureLayer[] }).layers ?? []), ...extra]);
      else await client.pushManifest(at, sig.bytes, sig.descriptor.mediaType);
      opts.onProgress?.({ step: 'signature', detail: tag });
      signatures = true;
    }
  }
  // The target's tag; without one (and without a digest), the source's, or `latest` when the source
  // named neither tag nor digest. A target given by digest alone gets no tag.
  const tag = dst.tag ?? (dst.digest === undefined ? (src.tag ?? (src.digest === undefined ? 'latest' : undefined)) : undefined);
  if (tag !== undefined) {
    await client.pushManifest(withTag(dst, tag), top.bytes, top.descriptor.mediaType);
    opts.onProgress?.({ step: 'tag', detail: tag });
  }
  return { ref: { ...(tag !== undefined ? withTag(dst, tag) : { registry: dst.registry, repository: dst.repository }), digest }, signatures };
}

/** The signature layers of the manifest at `at` that `source` lacks (none when there is no manifest). */
async function signaturesOnlyAt(client: RegistryClient, at: OciReference, source: FetchedManifest): Promise<SignatureLayer[]> {
  let existing: FetchedManifest;
  try {
    existing = await client.fetchManifest(at);
  } catch (err) {
    if (isDiginfraError(err, 'NOT_FOUND')) return [];
    throw err;
  }
  const key = (l: SignatureLayer) => `${l.digest} ${JSON.stringify(l.annotations ?? {})}`;
  const have = new Set(((source.json as { layers?: SignatureLayer[] }).layers ?? []).map(key));
  return ((existing.json as { layers?: SignatureLayer[] }).layers ?? []).filter((l) => !have.has(key(l)));
}
