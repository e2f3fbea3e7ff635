/**
 * `repo copy`: an artifact from one place to another, unchanged: every platform of an image index,
 * every blob, the same manifest bytes and so the same digests, then the tag; with `signatures`, its
 * cosign signatures too (the `sha256-<hex>.sig` tag, and the Sigstore bundles attached as referrers,
 * as cosign v3 writes them). A place is a registry repository or an OCI image
 * layout on disk (oci-layout.ts), so an artifact can reach an air-gapped network through a mirror or on
 * a disk. Blobs from a registry pass through the local blob cache (verified while downloaded, streamed,
 * never held in memory); a blob the target has is not copied, and within one registry the target is
 * asked to mount it. Content goes before the manifests that refer to it, signatures before the tag.
 */
import { createReadStream } from 'node:fs';
import { DiginfraError, isDiginfraError } from '../errors.js';
import type { BlobCache } from '../content/index.js';
import { formatReference, withDigest, withTag, type OciReference } from '../reference/index.js';
import { bufferBlob, sha256Digest, type Descriptor, type FetchedManifest, isIndexMediaType, OCI_INDEX, type RegistryClient } from '../registry/index.js';
import { signatureManifest, signatureTag, type SignatureLayer } from '../signature/index.js';
import { OciLayout, type LayoutRef } from './oci-layout.js';

/** Where an artifact is: a registry repository, or an OCI layout directory. */
export type Place = { kind: 'registry'; ref: OciReference } | { kind: 'layout'; ref: LayoutRef };

export interface CopyOptions {
  cache: BlobCache;
  /** Also copy the cosign signatures of the artifact's digest. */
  signatures?: boolean;
  onProgress?: (event: { step: 'blob' | 'manifest' | 'tag' | 'signature'; detail: string }) => void;
}

export interface CopyResult {
  /** The target as text, with its tag when it got one. */
  target: string;
  digest: string;
  /** Whether signatures were found and copied (false when asked and none exist). */
  signatures: boolean;
}

interface ManifestJson {
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

/** What copy needs of a place it reads from and writes to. */
interface Endpoint {
  tag: string | undefined;
  digest: string | undefined;
  text(tag?: string): string;
  fetchManifest(sel: { tag?: string; digest?: string }): Promise<FetchedManifest>;
  /** A verified local file with the blob's bytes. */
  blobFile(desc: Descriptor): Promise<{ path: string; note: string }>;
  /** True when the blob is there now without sending its bytes (present, or mounted). */
  hasOrMounts(desc: Descriptor, from: Endpoint): Promise<string | undefined>;
  putBlob(desc: Descriptor, file: string): Promise<void>;
  /** A small blob (a signature manifest's config) from memory. */
  putBlobBytes(desc: Descriptor, bytes: Buffer): Promise<void>;
  putManifest(m: FetchedManifest, tag?: string): Promise<void>;
  /** The Sigstore bundles attached to `digest` as referrers (signature.ts's bundle media types). */
  bundleReferrers(digest: string): Promise<Descriptor[]>;
  /** Stores a referrer manifest of `subject` where a reader finds it (a registry: its referrers API or tag fallback). */
  putReferrer(m: FetchedManifest, subject: string): Promise<void>;
}

/** Media types of Sigstore bundles (what `artifactType` of a cosign v3 signature says). */
const BUNDLE_ARTIFACT = /^application\/vnd\.dev\.sigstore\.bundle(\.v0\.\d+)?\+json/;

/** The referrers a layout lists in the tag-schema fallback index (`sha256-<hex>`), as registries without the API keep it. */
async function layoutReferrers(layout: OciLayout, subject: string): Promise<FetchedManifest | undefined> {
  return layout.fetchManifest({ tag: subject.replace(':', '-') }).catch((err: unknown) => {
    if (isDiginfraError(err, 'NOT_FOUND')) return undefined;
    throw err;
  });
}

function registryEndpoint(client: RegistryClient, ref: OciReference, cache: BlobCache): Endpoint & { ref: OciReference } {
  return {
    ref,
    tag: ref.tag,
    digest: ref.digest,
    text: (tag) => formatReference(tag !== undefined ? withTag(ref, tag) : { registry: ref.registry, repository: ref.repository, ...(ref.digest && { digest: ref.digest }) }),
    fetchManifest: (sel) => client.fetchManifest(sel.digest !== undefined ? withDigest(ref, sel.digest) : withTag(ref, sel.tag ?? 'latest')),
    blobFile: async (desc) => {
      const { path, downloaded } = await cache.fetch(client, ref, desc);
      return { path, note: downloaded ? 'downloaded' : 'from the cache' };
    },
    hasOrMounts: async (desc, from) => {
      if (await client.blobExists(ref, desc.digest)) return 'exists';
      const src = (from as { ref?: OciReference }).ref;
      if (src && 'registry' in src && src.registry === ref.registry && src.repository !== ref.repository && (await client.mountBlob(ref, desc.digest, src.repository))) return 'mounted';
      return undefined;
    },
    putBlob: async (desc, file) => void (await client.pushBlob(ref, { digest: desc.digest, size: desc.size, open: () => createReadStream(file) })),
    putBlobBytes: async (desc, bytes) => void (await client.pushBlob(ref, bufferBlob(bytes))),
    putManifest: async (m, tag) => void (await client.pushManifest(tag !== undefined ? withTag(ref, tag) : withDigest(ref, m.descriptor.digest), m.bytes, m.descriptor.mediaType)),
    bundleReferrers: async (digest) => (await client.referrers(ref, digest)).filter((d) => BUNDLE_ARTIFACT.test(d.artifactType ?? '')),
    // The client keeps the referrers fallback tag itself when the registry has no referrers API.
    putReferrer: async (m) => void (await client.pushManifest(withDigest(ref, m.descriptor.digest), m.bytes, m.descriptor.mediaType)),
  };
}

function layoutEndpoint(ref: LayoutRef): Endpoint {
  const layout = new OciLayout(ref.dir);
  return {
    tag: ref.tag,
    digest: ref.digest,
    text: (tag) => `oci:${ref.dir}${tag !== undefined ? `:${tag}` : ref.digest !== undefined ? `@${ref.digest}` : ''}`,
    fetchManifest: (sel) => layout.fetchManifest(sel),
    blobFile: async (desc) => ({ path: await layout.blobFile(desc), note: 'from the layout' }),
    hasOrMounts: async (desc) => ((await layout.hasBlob(desc.digest)) ? 'exists' : undefined),
    putBlob: (desc, file) => layout.putBlobFile(desc.digest, file),
    putBlobBytes: (desc, bytes) => layout.putBlobBytes(desc.digest, bytes),
    putManifest: (m, tag) => layout.putManifest(m.bytes, m.descriptor, tag),
    bundleReferrers: async (digest) => (((await layoutReferrers(layout, digest))?.json as { manifests?: Descriptor[] } | undefined)?.manifests ?? []).filter((d) => BUNDLE_ARTIFACT.test(d.artifactType ?? '')),
    // A layout has no referrers API: the fallback index at tag `sha256-<hex>` lists them, as a registry without one does.
    putReferrer: async (m, subject) => {
      await layout.putManifest(m.bytes, m.descriptor);
      const listed = ((await layoutReferrers(layout, subject))?.json as { manifests?: Descriptor[] } | undefined)?.manifests ?? [];
      if (listed.some((d) => d.digest === m.descriptor.digest)) return;
      const json = m.json as { artifactType?: string; annotations?: Record<string, string> };
      const entry = { mediaType: m.descriptor.mediaType, digest: m.descriptor.digest, size: m.descriptor.size, ...(json.artifactType !== undefined && { artifactType: json.artifactType }), ...(json.annotations !== undefined && { annotations: json.annotations }) };
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...listed, entry] }));
      await layout.putManifest(bytes, { mediaType: OCI_INDEX, digest: sha256Digest(bytes), size: bytes.length }, subject.replace(':', '-'));
    },
  };
}

export async function copyArtifact(client: RegistryClient, from: Place, to: Place, opts: CopyOptions): Promise<CopyResult> {
  const endpoint = (p: Place): Endpoint => (p.kind === 'registry' ? registryEndpoint(client, p.ref, opts.cache) : layoutEndpoint(p.ref));
  const src = endpoint(from);
  const dst = endpoint(to);
  if (dst.digest !== undefined && src.digest !== undefined && dst.digest !== src.digest) {
    throw new DiginfraError('USAGE', `cannot copy ${src.text()} to ${dst.text()}: a copy keeps the digest`);
  }
  const top = await src.fetchManifest({ ...(src.tag !== undefined && { tag: src.tag }), ...(src.digest !== undefined && { digest: src.digest }) });
  const digest = top.descriptor.digest;
  if (dst.digest !== undefined && dst.digest !== digest) throw new DiginfraError('DIGEST_MISMATCH', `${src.text()} is ${digest}, not ${dst.digest}`);

  const copyBlob = async (desc: Descriptor): Promise<void> => {
    const there = await dst.hasOrMounts(desc, src);
    if (there) return opts.onProgress?.({ step: 'blob', detail: `${desc.digest} ${there}` });
    const { path, note } = await src.blobFile(desc);
    await dst.putBlob(desc, path);
    opts.onProgress?.({ step: 'blob', detail: `${desc.digest} copied (${note})` });
  };
  /** Everything `m` refers to, then `m` itself, by digest: the target never holds a dangling reference. */
  const copyTree = async (m: FetchedManifest): Promise<void> => {
    const json = m.json as ManifestJson;
    if (isIndexMediaType(m.descriptor.mediaType)) {
      for (const entry of json.manifests ?? []) await copyTree(await src.fetchManifest({ digest: entry.digest }));
    } else {
      for (const desc of [...(json.config ? [json.config] : []), ...(json.layers ?? [])]) await copyBlob(desc);
    }
    await dst.putManifest(m);
    opts.onProgress?.({ step: 'manifest', detail: m.descriptor.digest });
  };
  await copyTree(top);

  // Signatures before the tag, so a follower of the target never sees it unsigned.
  let signatures = false;
  if (opts.signatures) {
    const tag = signatureTag(digest);
    const sig = await src.fetchManifest({ tag }).catch((err: unknown) => {
      if (isDiginfraError(err, 'NOT_FOUND')) return undefined;
      throw err;
    });
    if (sig) {
      await copyTree(sig);
      // Signatures the target already has (its owner's own key, say) are kept: the layers are merged.
      const extra = await signaturesOnlyAt(dst, tag, sig);
      if (extra.length > 0) {
        const merged = signatureManifest([...((sig.json as { layers?: SignatureLayer[] }).layers ?? []), ...extra]);
        await dst.putBlobBytes(merged.config.descriptor, merged.config.bytes);
        await dst.putManifest(merged.manifest, tag);
      } else {
        await dst.putManifest(sig, tag);
      }
      opts.onProgress?.({ step: 'signature', detail: tag });
      signatures = true;
    }
    // cosign v3's Sigstore bundles, referrers of the digest: each manifest and its blobs, by digest.
    for (const referrer of await src.bundleReferrers(digest)) {
      const m = await src.fetchManifest({ digest: referrer.digest });
      const json = m.json as ManifestJson & { subject?: Descriptor };
      if (json.subject?.digest !== digest) continue; // a fallback index lists what anyone pushed: only true referrers go
      for (const desc of [...(json.config ? [json.config] : []), ...(json.layers ?? [])]) await copyBlob(desc);
      await dst.putReferrer(m, digest);
      opts.onProgress?.({ step: 'signature', detail: `bundle ${referrer.digest}` });
      signatures = true;
    }
  }
  // The target's tag; without one (and without a digest), the source's, or `latest` when the source
  // named neither tag nor digest. A target given by digest alone gets no tag.
  const tag = dst.tag ?? (dst.digest === undefined ? (src.tag ?? (src.digest === undefined ? 'latest' : undefined)) : undefined);
  if (tag !== undefined) {
    await dst.putManifest(top, tag);
    opts.onProgress?.({ step: 'tag', detail: tag });
  }
  return { target: dst.text(tag), digest, signatures };
}

/** The signature layers of the target's manifest at `tag` that `source` lacks (none when there is no manifest). */
async function signaturesOnlyAt(target: Endpoint, tag: string, source: FetchedManifest): Promise<SignatureLayer[]> {
  let existing: FetchedManifest;
  try {
    existing = await target.fetchManifest({ tag });
  } catch (err) {
    if (isDiginfraError(err, 'NOT_FOUND')) return [];
    throw err;
  }
  const key = (l: SignatureLayer) => `${l.digest} ${JSON.stringify(l.annotations ?? {})}`;
  const have = new Set(((source.json as { layers?: SignatureLayer[] }).layers ?? []).map(key));
  return ((existing.json as { layers?: SignatureLayer[] }).layers ?? []).filter((l) => !have.has(key(l)));
}
