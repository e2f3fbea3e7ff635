/**
 * Finding the keyless signatures of a digest in a registry, in both formats found there:
 *
 *  - cosign v2: layers of the `sha256-<hex>.sig` manifest (cosign.ts), each turned into a bundle
 *    (cosign-v2-bundle.ts) whose signed message is the layer's simple-signing payload;
 *  - cosign v3: Sigstore bundles attached as referrers (specs/BUNDLE_SPEC.md of sigstore/cosign): a
 *    manifest with artifactType `application/vnd.dev.sigstore.bundle.v0.3+json`, `subject` the
 *    digest, one layer holding the bundle JSON. Found through the referrers API, or its tag-schema
 *    fallback (`sha256-<hex>`, an image index) where the registry has no API.
 *
 * Only reading happens here; nothing found is trusted until keyless.ts has verified it.
 */
import { createHash } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import { isDiginfraError, messageOf } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import { type ArtifactSource, type RegistryClient, OCI_INDEX, OCI_MANIFEST, type Descriptor, type ImageIndex, type ImageManifest } from '../registry/index.js';
import { existingSignatures, MAX_PAYLOAD, signatureTag, SIMPLE_SIGNING } from './cosign.js';
import { bundleFromCosignV2Layer } from './cosign-v2-bundle.js';

/** What finding signatures needs: manifests and small blobs, and the referrers API where the source has one. */
export type SignatureSource = ArtifactSource & Partial<Pick<RegistryClient, 'referrers'>>;

/** Media types of Sigstore bundles: `application/vnd.dev.sigstore.bundle.v0.3+json` and the older `...bundle+json;version=0.x`. */
const BUNDLE_MEDIA_TYPE = /^application\/vnd\.dev\.sigstore\.bundle(\.v0\.\d+)?\+json/;
/** A bundle is a few KiB; an image signature's is ~5 KiB. */
const MAX_BUNDLE_BYTES = 256 * 1024;
/** Bounds the work one artifact can cause: more signatures than this are not looked at. */
export const MAX_CANDIDATES = 32;

/** One signature found, ready for verification, or why it cannot be verified. */
export interface FoundSignature {
  /** Where it was found, for refusals: `tag sha256-….sig, layer 2` or `referrer sha256:…`. */
  readonly where: string;
  readonly format: 'cosign-v2' | 'sigstore-bundle';
  readonly bundle?: Bundle;
  /** The signed message of a message signature (cosign v2: the simple-signing payload). */
  readonly artifact?: Buffer;
  readonly why?: string;
  /** A cosign v2 layer made with a key pair: it counts for a keyed policy, not a keyless one. */
  readonly keyPair?: boolean;
}

/** Errors that say the registry could not be asked, not that one signature is bad: they stop the search. */
function isTransportError(err: unknown): boolean {
  return !isDiginfraError(err) || err.code === 'NETWORK' || err.code === 'AUTH_REQUIRED' || err.code === 'RATE_LIMITED';
}

async function parseBundle(bytes: Buffer): Promise<{ bundle?: Bundle; why?: string }> {
  const { bundleFromJSON } = await import('@sigstore/bundle');
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { why: 'its bundle is not JSON' };
  }
  try {
    return { bundle: bundleFromJSON(json) };
  } catch (err) {
    const fields = (err as { fields?: string[] }).fields;
    return { why: `its bundle is not a valid Sigstore bundle (${messageOf(err)}${fields?.length ? `: ${fields.join(', ')}` : ''})` };
  }
}

/** The cosign v2 signatures at `sha256-<hex>.sig`, as bundles. */
export async function findCosignV2Signatures(source: SignatureSource, repo: OciReference, digest: string): Promise<FoundSignature[]> {
  const tag = signatureTag(digest);
  const at: OciReference = { registry: repo.registry, repository: repo.repository, tag };
  const layers = ((await existingSignatures(source, at))?.layers ?? []).filter((l) => l.mediaType === SIMPLE_SIGNING).slice(0, MAX_CANDIDATES);
  const found: FoundSignature[] = [];
  for (const [i, layer] of layers.entries()) {
    const where = `tag ${tag}, layer ${i + 1}`;
    let payload: Buffer;
    try {
      payload = await source.readBlob(at, layer, MAX_PAYLOAD);
    } catch (err) {
      if (isTransportError(err)) throw err;
      found.push({ where, format: 'cosign-v2', why: `it could not be read (${messageOf(err)})` });
      continue;
    }
    const converted = bundleFromCosignV2Layer(layer, payload);
    if ('why' in converted) {
      found.push({ where, format: 'cosign-v2', why: converted.why, ...(converted.keyPair && { keyPair: true }) });
      continue;
    }
    const { bundle, why } = await parseBundle(Buffer.from(JSON.stringify(converted.bundle)));
    found.push({ where, format: 'cosign-v2', artifact: payload, ...(bundle !== undefined && { bundle }), ...(why !== undefined && { why }) });
  }
  return found;
}

/** Referrers of `digest`: the source's own lookup (API, then tag schema), else the tag schema read here. */
async function referrersOf(source: SignatureSource, repo: OciReference, digest: string): Promise<Descriptor[]> {
  if (source.referrers !== undefined) return source.referrers(repo, digest);
  try {
    const index = await source.fetchManifest({ registry: repo.registry, repository: repo.repository, tag: digest.replace(':', '-') }, [OCI_INDEX]);
    return (index.json as unknown as ImageIndex).manifests ?? [];
  } catch (err) {
    if (isDiginfraError(err, 'NOT_FOUND')) return [];
    throw err;
  }
}

/** The Sigstore bundles attached to `digest` as referrers (cosign v3). */
export async function findBundleReferrers(source: SignatureSource, repo: OciReference, digest: string): Promise<FoundSignature[]> {
  const referrers = (await referrersOf(source, repo, digest)).filter((d) => BUNDLE_MEDIA_TYPE.test(d.artifactType ?? '')).slice(0, MAX_CANDIDATES);
  const found: FoundSignature[] = [];
  for (const ref of referrers) {
    const where = `referrer ${ref.digest}`;
    const at: OciReference = { registry: repo.registry, repository: repo.repository, digest: ref.digest };
    try {
      const manifest = (await source.fetchManifest(at, [OCI_MANIFEST])).json as unknown as ImageManifest;
      // The tag-schema index is written by whoever can push: the manifest itself must point at the digest.
      if (manifest.subject?.digest !== digest) {
        found.push({ where, format: 'sigstore-bundle', why: `its subject is ${manifest.subject?.digest ?? 'absent'}, not ${digest}` });
        continue;
      }
      const layer = (manifest.layers ?? []).find((l) => BUNDLE_MEDIA_TYPE.test(l.mediaType));
      if (layer === undefined) {
        found.push({ where, format: 'sigstore-bundle', why: 'it has no Sigstore bundle layer' });
        continue;
      }
      const { bundle, why } = await parseBundle(await source.readBlob(at, layer, MAX_BUNDLE_BYTES));
      found.push({ where, format: 'sigstore-bundle', ...(bundle !== undefined && { bundle }), ...(why !== undefined && { why }) });
    } catch (err) {
      if (isTransportError(err)) throw err;
      found.push({ where, format: 'sigstore-bundle', why: `it could not be read (${messageOf(err)})` });
    }
  }
  return found;
}

/**
 * What the signatures of `digest` are now, to notice one added later (follow looks again at a version
 * it refused as unsigned): the digest of its `sha256-<hex>.sig` manifest and those of its Sigstore
 * bundle referrers; `none` when there is neither. One HEAD and one referrers lookup.
 */
export async function signaturesState(source: SignatureSource & Pick<RegistryClient, 'resolve'>, repo: OciReference, digest: string): Promise<string> {
  let sig: string | undefined;
  try {
    sig = (await source.resolve({ registry: repo.registry, repository: repo.repository, tag: signatureTag(digest) })).digest;
  } catch (err) {
    if (!isDiginfraError(err, 'NOT_FOUND')) throw err;
  }
  const bundles = (await referrersOf(source, repo, digest)).filter((d) => BUNDLE_MEDIA_TYPE.test(d.artifactType ?? '')).map((d) => d.digest).sort();
  if (bundles.length === 0) return sig ?? 'none';
  // With bundles, one digest over both: a state stays a short string in the follow state file.
  return `sha256:${createHash('sha256').update(JSON.stringify({ sig: sig ?? null, bundles })).digest('hex')}`;
}
