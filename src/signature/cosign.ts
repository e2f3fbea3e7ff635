/**
 * cosign signatures with a key pair (cosign's `sign --key` / `verify --key`), in cosign's own format
 * (specs/SIGNATURE_SPEC.md of sigstore/cosign), so signatures made by either tool verify in the other:
 *
 *  - found by tag: the artifact's digest `sha256:<hex>` gives the tag `sha256-<hex>.sig` in the same
 *    repository, an OCI image manifest with one layer per signature;
 *  - each layer is a "simple signing" payload (`application/vnd.dev.cosign.simplesigning.v1+json`) that
 *    names the signed digest under `critical.image.docker-manifest-digest`, with `critical.type`
 *    `cosign container image signature`; the layer's annotation `dev.cosignproject.cosign/signature`
 *    holds the base64 signature of the payload's bytes (ECDSA P-256 with SHA-256, cosign's default;
 *    RSA and Ed25519 keys work too).
 *
 * What is signed is the digest a tag points at: for a multi-platform plugin, the image index. Here a
 * signature counts only when one of the given public keys verifies it; keyless signatures (a Fulcio
 * certificate in the layer, a Rekor entry) are verified by keyless.ts through sigstore-js.
 */
import { createHash, createPublicKey, createPrivateKey, sign as signBytes, verify as verifyBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { DiginfraError, isDiginfraError, messageOf } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import { type ArtifactSource, type Descriptor, DOCKER_MANIFEST, type FetchedManifest, OCI_MANIFEST, type RegistryClient, sha256Digest } from '../registry/index.js';

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_TYPE = 'cosign container image signature';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** A payload is ~250 bytes; anything much bigger is not one. */
export const MAX_PAYLOAD = 64 * 1024;

/** `sha256:<hex>` -> `sha256-<hex>.sig`: where cosign keeps the signatures of that digest. */
export function signatureTag(digest: string): string {
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new DiginfraError('REF_INVALID', `cannot sign or verify "${digest}": not a sha256 digest`);
  return `${digest.replace(':', '-')}.sig`;
}

/** The simple-signing payload for `digest` in `repo` (cosign's field order and spelling). */
export function simpleSigningPayload(repo: OciReference, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': `${repo.registry}/${repo.repository}` }, image: { 'docker-manifest-digest': digest }, type: COSIGN_TYPE },
      optional: null,
    }),
  );
}

/** A value of `o` by key, compared case-insensitively (cosign decodes JSON that way: `Docker-manifest-digest` is seen). */
function field(o: unknown, key: string): unknown {
  if (typeof o !== 'object' || o === null) return undefined;
  const k = Object.keys(o).find((x) => x.toLowerCase() === key);
  return k === undefined ? undefined : (o as Record<string, unknown>)[k];
}

/** The digest a simple-signing payload vouches for, or why it does not count. */
export function signedDigest(payload: Buffer): { digest: string } | { why: string } {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { why: 'its payload is not JSON' };
  }
  const critical = field(json, 'critical');
  if (field(critical, 'type') !== COSIGN_TYPE) return { why: `its payload's critical.type is not "${COSIGN_TYPE}"` };
  const digest = field(field(critical, 'image'), 'docker-manifest-digest');
  if (typeof digest !== 'string') return { why: "its payload names no critical.image.docker-manifest-digest" };
  return { digest };
}

/** Key types cosign signs with (EC keys with SHA-256, as its default P-256). */
const KEY_TYPES = new Set(['ec', 'rsa', 'ed25519']);

function checkKeyType(key: KeyObject, path: string): KeyObject {
  if (!KEY_TYPES.has(key.asymmetricKeyType ?? '')) {
    throw new DiginfraError('USAGE', `${path} is a ${key.asymmetricKeyType ?? 'unknown'} key; cosign signatures use ECDSA (P-256), RSA or Ed25519 keys`);
  }
  return key;
}

function verifies(payload: Buffer, signature: Buffer, key: KeyObject): boolean {
  try {
    return verifyBytes(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key, signature);
  } catch {
    return false;
  }
}

/** Public keys from PEM files (a cosign.pub, or any SPKI/X.509 PEM); a clear error names the bad file. */
export function loadPublicKeys(paths: readonly string[]): KeyObject[] {
  return paths.map((path) => {
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (err) {
      throw new DiginfraError('USAGE', `cannot read the verification key ${path}: ${messageOf(err)}`, { cause: err });
    }
    // createPublicKey would take a private key too (and derive its public half): refuse it, so a
    // private key never ends up in a ConfigMap by mistake.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
      throw new DiginfraError('USAGE', `${path} holds a private key; a verification key is the public half (cosign.pub)`, {
        hint: `openssl pkey -in ${path} -pubout gives the public key; keep the private one with the publisher`,
      });
    }
    try {
      return checkKeyType(createPublicKey(pem), path);
    } catch (err) {
      if (err instanceof DiginfraError) throw err;
      throw new DiginfraError('USAGE', `${path} is not a PEM public key (${messageOf(err)})`, {
        hint: 'give the public half of the signing key, e.g. the cosign.pub that `cosign generate-key-pair` wrote',
      });
    }
  });
}

/** A private key from an unencrypted PEM file (PKCS#8 or SEC1); cosign's encrypted cosign.key is not read. */
export function loadPrivateKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DiginfraError('USAGE', `cannot read the signing key ${path}: ${messageOf(err)}`, { cause: err });
  }
  if (pem.includes('ENCRYPTED SIGSTORE PRIVATE KEY') || pem.includes('ENCRYPTED COSIGN PRIVATE KEY')) {
    throw new DiginfraError('USAGE', `${path} is cosign's encrypted key format, which diginfractl does not read`, {
      hint: 'sign with an unencrypted PEM key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem), or run `cosign sign --key` yourself: its signatures verify here',
    });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new DiginfraError('USAGE', `${path} is not an unencrypted PEM private key (${messageOf(err)})`);
  }
  return checkKeyType(key, path);
}

export type SignatureLayer = Descriptor & { annotations?: Record<string, string> };

export interface SignatureManifest {
  layers?: SignatureLayer[];
}

/** The signature manifest at `at` (a `sha256-<hex>.sig` tag), or undefined when there is none. */
export async function existingSignatures(client: ArtifactSource, at: OciReference): Promise<SignatureManifest | undefined> {
  try {
    // cosign writes OCI manifests, or Docker v2 ones with COSIGN_DOCKER_MEDIA_TYPES=1.
    return (await client.fetchManifest(at, [OCI_MANIFEST, DOCKER_MANIFEST])).json as SignatureManifest;
  } catch (err) {
    if (isDiginfraError(err, 'NOT_FOUND')) return undefined;
    throw err;
  }
}

const blobOf = (bytes: Buffer) => ({ digest: sha256Digest(bytes), size: bytes.length, open: () => Readable.from([bytes]) });

/**
 * Signs `digest` of `repo` with `key` and adds the signature to its `sha256-<hex>.sig` manifest (kept
 * signatures stay, as with cosign). Returns the signature tag.
 */
export async function signDigest(client: RegistryClient, repo: OciReference, digest: string, key: KeyObject): Promise<string> {
  const tag = signatureTag(digest);
  const at: OciReference = { registry: repo.registry, repository: repo.repository, tag };
  const payload = simpleSigningPayload(repo, digest);
  const signature = signBytes(key.asymmetricKeyType === 'ed25519' ? null : 'sha256', payload, key).toString('base64');
  const layer = { mediaType: SIMPLE_SIGNING, ...blobOf(payload), annotations: { [SIGNATURE_ANNOTATION]: signature } };
  // Signing again with the same key replaces that key's signature of this payload (ECDSA signatures
  // differ every time, so comparing them would pile up copies); every other signature is kept.
  const mine = createPublicKey(key);
  const ours = (l: SignatureLayer): boolean => {
    const encoded = l.annotations?.[SIGNATURE_ANNOTATION];
    return l.digest === layer.digest && encoded !== undefined && verifies(payload, Buffer.from(encoded, 'base64'), mine);
  };
  const kept = ((await existingSignatures(client, at))?.layers ?? []).filter((l) => !ours(l));
  const layers = [...kept, { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: layer.annotations }];
  await client.pushBlob(at, layer);
  await writeSignatureManifest(client, at, layers);
  return tag;
}

/**
 * The signature manifest for these layers and its config blob, as cosign writes them: the config
 * lists the layers' digests. Pure; `repo copy` stores the pair into an OCI layout too.
 */
export function signatureManifest(layers: readonly SignatureLayer[]): { config: { descriptor: Descriptor; bytes: Buffer }; manifest: FetchedManifest } {
  const config = Buffer.from(JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }));
  const configDescriptor = { mediaType: OCI_CONFIG, digest: sha256Digest(config), size: config.length };
  const json = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDescriptor, layers };
  const bytes = Buffer.from(JSON.stringify(json));
  return { config: { descriptor: configDescriptor, bytes: config }, manifest: { descriptor: { mediaType: OCI_MANIFEST, digest: sha256Digest(bytes), size: bytes.length }, bytes, json } };
}

/** Writes the signature manifest at `at` (a `sha256-<hex>.sig` tag) with these layers, whose payload blobs must be there already. */
export async function writeSignatureManifest(client: RegistryClient, at: OciReference, layers: readonly SignatureLayer[]): Promise<void> {
  const { config, manifest } = signatureManifest(layers);
  await client.pushBlob(at, blobOf(config.bytes));
  await client.pushManifest(at, manifest.bytes, OCI_MANIFEST);
}

/** Tags that hold signatures, attestations or the referrers fallback of a digest, not versions. */
export function isDigestTag(tag: string): boolean {
  return /^sha256-[a-f0-9]{64}(\.[a-z]+)?$/.test(tag);
}

/**
 * The cosign signatures of `digest` without checking them (no key is needed to count): those made
 * with a key pair, and keyless ones (a Fulcio certificate in the layer).
 */
export async function signatureSummary(client: RegistryClient, repo: OciReference, digest: string): Promise<{ tag: string; keyPair: number; keyless: number }> {
  const tag = signatureTag(digest);
  const layers = ((await existingSignatures(client, { registry: repo.registry, repository: repo.repository, tag }))?.layers ?? []).filter((l) => l.mediaType === SIMPLE_SIGNING);
  const keyless = layers.filter((l) => l.annotations?.['dev.sigstore.cosign/certificate'] !== undefined).length;
  return { tag, keyPair: layers.length - keyless, keyless };
}

/** A fingerprint of a key (sha256 of its SPKI), to notice a key file whose contents changed. */
export function fingerprintOf(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex');
}

/**
 * Throws unless a cosign signature of `digest` in `repo` verifies with one of `keys`: SIGNATURE_MISSING
 * when there is none, SIGNATURE_INVALID when none of those found verifies (each one's reason is named).
 */
export async function verifyDigest(client: ArtifactSource, repo: OciReference, digest: string, keys: readonly KeyObject[]): Promise<void> {
  const tag = signatureTag(digest);
  const at: OciReference = { registry: repo.registry, repository: repo.repository, tag };
  const what = `${repo.registry}/${repo.repository}@${digest}`;
  const manifest = await existingSignatures(client, at);
  const layers = (manifest?.layers ?? []).filter((l) => l.mediaType === SIMPLE_SIGNING);
  if (layers.length === 0) {
    throw new DiginfraError('SIGNATURE_MISSING', `${what} is not signed: no cosign signature at tag ${tag}`, {
      hint: 'the publisher signs it with diginfractl repo sign (or cosign sign --key); without verification keys nothing is checked',
    });
  }
  const reasons: string[] = [];
  for (const layer of layers) {
    const encoded = layer.annotations?.[SIGNATURE_ANNOTATION];
    if (!encoded) {
      reasons.push('one has no signature annotation (a keyless signature?)');
      continue;
    }
    let payload: Buffer;
    try {
      payload = await client.readBlob(at, layer, MAX_PAYLOAD);
    } catch (err) {
      // One unreadable layer must not hide the valid signatures after it.
      if (!isDiginfraError(err) || err.code === 'NETWORK' || err.code === 'AUTH_REQUIRED' || err.code === 'RATE_LIMITED') throw err;
      reasons.push(`one could not be read (${messageOf(err)})`);
      continue;
    }
    const signed = signedDigest(payload);
    if ('why' in signed) {
      reasons.push(`one does not count: ${signed.why}`);
      continue;
    }
    if (signed.digest !== digest) {
      reasons.push(`one signs ${signed.digest}, another digest`);
      continue;
    }
    const sig = Buffer.from(encoded, 'base64');
    if (keys.some((k) => verifies(payload, sig, k))) return;
    reasons.push('one was made by a key not among the verification keys');
  }
  throw new DiginfraError('SIGNATURE_INVALID', `${what}: no cosign signature verifies with the ${keys.length === 1 ? 'verification key' : `${keys.length} verification keys`} (${reasons.join('; ')})`, {
    hint: 'check that the key is the public half of the key the publisher signs with',
  });
}
