/**
 * Keyless signing for CI (`repo push --sign`), as cosign does it, with sigstore-js (@sigstore/sign):
 * an ephemeral key, a Fulcio certificate binding it to the job's OIDC identity, the signature logged
 * in Rekor. Written in the formats verify.ts reads:
 *
 *  - v3 (always): a Sigstore bundle (DSSE in-toto statement, predicate
 *    https://sigstore.dev/cosign/sign/v1, subject the digest) attached as a referrer of the digest;
 *  - v2 (`--signature-format v2`, also): a layer of the `sha256-<hex>.sig` manifest, the simple-signing
 *    payload signed, its certificate and Rekor's signed entry timestamp as annotations, for verifiers
 *    that read only that tag (cosign v2, falcoctl).
 *
 * Nothing is trusted here: the caller pushes before the tag moves, and verifiers check everything.
 */
import { Readable } from 'node:stream';
import type { Bundle } from '@sigstore/bundle';
import { DiginfraError, messageOf } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import { OCI_MANIFEST, sha256Digest, type RegistryClient } from '../registry/index.js';
import { existingSignatures, SIGNATURE_ANNOTATION, signatureTag, SIMPLE_SIGNING, simpleSigningPayload, writeSignatureManifest } from './cosign.js';
import { CERTIFICATE_ANNOTATION, REKOR_BUNDLE_ANNOTATION } from './cosign-v2-bundle.js';
import { COSIGN_SIGN_PREDICATE } from './keyless.js';

const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
const IN_TOTO = 'application/vnd.in-toto+json';
/** Sigstore's public-good services, cosign's defaults. */
export const DEFAULT_FULCIO_URL = 'https://fulcio.sigstore.dev';
export const DEFAULT_REKOR_URL = 'https://rekor.sigstore.dev';

export interface KeylessSignOptions {
  /** The OIDC identity token (a JWT) Fulcio exchanges for a certificate. */
  identityToken: string;
  fulcioUrl?: string;
  rekorUrl?: string;
  /** `v3`: the bundle referrer; `v2`: that and the `.sig` layer. */
  format: 'v2' | 'v3';
  /** Per-request timeout of Fulcio and Rekor, default 30 s. */
  timeoutMs?: number;
}

export interface KeylessSigned {
  /** The digest of the referrer manifest that holds the bundle. */
  referrer: string;
  /** The `.sig` tag written (v2 only). */
  signatureTag?: string;
}

const blobOf = (bytes: Buffer) => ({ digest: sha256Digest(bytes), size: bytes.length, open: () => Readable.from([bytes]) });

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** A failure of @sigstore/sign (its InternalError has a `code`), named for the user. */
function signingError(err: unknown, opts: KeylessSignOptions): DiginfraError {
  const code = (err as { code?: string }).code ?? '';
  const cause = (err as { cause?: unknown }).cause;
  const detail = `${messageOf(err)}${cause !== undefined ? `: ${messageOf(cause)}` : ''}`;
  if (code.startsWith('IDENTITY_TOKEN')) {
    return new DiginfraError('USAGE', `keyless signing: the OIDC identity token is not usable (${detail})`, { cause: err, hint: 'give a fresh token with --identity-token FILE or SIGSTORE_ID_TOKEN' });
  }
  const where = code.startsWith('CA_') ? `Fulcio at ${opts.fulcioUrl ?? DEFAULT_FULCIO_URL}` : code.startsWith('TLOG_') ? `Rekor at ${opts.rekorUrl ?? DEFAULT_REKOR_URL}` : 'Sigstore';
  return new DiginfraError('NETWORK', `keyless signing failed at ${where}: ${detail}`, { cause: err, hint: 'nothing was tagged; run the push again' });
}

/** The bundle builders of @sigstore/sign for these options: a Fulcio signer, a Rekor witness. */
async function builders(opts: KeylessSignOptions) {
  const { DSSEBundleBuilder, FulcioSigner, MessageSignatureBundleBuilder, RekorWitness } = await import('@sigstore/sign');
  const fetch = { timeout: opts.timeoutMs ?? 30_000, retry: 2 };
  const signer = new FulcioSigner({ identityProvider: { getToken: async () => opts.identityToken }, fulcioBaseURL: opts.fulcioUrl ?? DEFAULT_FULCIO_URL, ...fetch });
  const rekor = { rekorBaseURL: opts.rekorUrl ?? DEFAULT_REKOR_URL, ...fetch };
  return {
    // A `dsse` log entry, as cosign v3 logs its bundles (not the older `intoto` kind).
    dsse: new DSSEBundleBuilder({ signer, witnesses: [new RekorWitness({ ...rekor, entryType: 'dsse' })] }),
    message: new MessageSignatureBundleBuilder({ signer, witnesses: [new RekorWitness(rekor)] }),
  };
}

/** cosign v3's image signature: an in-toto statement about `digest`, predicate https://sigstore.dev/cosign/sign/v1. */
function statementFor(repo: OciReference, digest: string): Buffer {
  const [algorithm, hex] = digest.split(':');
  return Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: `${repo.registry}/${repo.repository}`, digest: { [algorithm!]: hex } }], predicateType: COSIGN_SIGN_PREDICATE, predicate: {} }));
}

/**
 * Attaches `bundle` to `digest` as cosign v3 does (specs/BUNDLE_SPEC.md of sigstore/cosign): a referrer
 * manifest with artifactType the bundle's media type, the empty config, one layer holding the bundle.
 * Returns its digest.
 */
export async function attachBundle(client: RegistryClient, repo: OciReference, digest: string, bundle: Buffer): Promise<string> {
  const at: OciReference = { registry: repo.registry, repository: repo.repository };
  const subject = await client.resolve({ ...at, digest });
  const empty = Buffer.from('{}');
  await client.pushBlob(at, blobOf(empty));
  await client.pushBlob(at, blobOf(bundle));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE_V03,
      config: { mediaType: OCI_EMPTY, digest: sha256Digest(empty), size: empty.length },
      layers: [{ mediaType: BUNDLE_V03, digest: sha256Digest(bundle), size: bundle.length }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': COSIGN_SIGN_PREDICATE },
    }),
  );
  const referrer = sha256Digest(manifest);
  await client.pushManifest({ ...at, digest: referrer }, manifest, OCI_MANIFEST);
  return referrer;
}

/** The cosign v2 annotations of a message-signature bundle: its signature, certificate and Rekor's signed entry timestamp. */
async function v2Annotations(bundle: Bundle): Promise<Record<string, string>> {
  const { bundleToJSON } = await import('@sigstore/bundle');
  const json = bundleToJSON(bundle) as {
    messageSignature?: { signature: string };
    verificationMaterial: {
      certificate?: { rawBytes: string };
      x509CertificateChain?: { certificates: { rawBytes: string }[] };
      tlogEntries: { logIndex: string; logId: { keyId: string }; integratedTime: string; inclusionPromise?: { signedEntryTimestamp: string }; canonicalizedBody: string }[];
    };
  };
  const material = json.verificationMaterial;
  const leaf = material.certificate?.rawBytes ?? material.x509CertificateChain?.certificates[0]?.rawBytes;
  const entry = material.tlogEntries[0];
  if (json.messageSignature === undefined || leaf === undefined || entry?.inclusionPromise === undefined) {
    throw new DiginfraError('NETWORK', 'keyless signing: Rekor answered without a signed entry timestamp, which a cosign v2 signature needs', { hint: 'sign without --signature-format v2' });
  }
  return {
    [SIGNATURE_ANNOTATION]: json.messageSignature.signature,
    [CERTIFICATE_ANNOTATION]: pem(Buffer.from(leaf, 'base64')),
    [REKOR_BUNDLE_ANNOTATION]: JSON.stringify({
      SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
      Payload: { body: entry.canonicalizedBody, integratedTime: Number(entry.integratedTime), logIndex: Number(entry.logIndex), logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex') },
    }),
  };
}

/** Adds a keyless cosign v2 layer for `digest` to its `.sig` manifest (the signatures there are kept). */
async function addV2Signature(client: RegistryClient, repo: OciReference, digest: string, message: { create(a: { data: Buffer }): Promise<Bundle> }): Promise<string> {
  const tag = signatureTag(digest);
  const at: OciReference = { registry: repo.registry, repository: repo.repository, tag };
  const payload = simpleSigningPayload(repo, digest);
  const annotations = await v2Annotations(await message.create({ data: payload }));
  const kept = (await existingSignatures(client, at))?.layers ?? [];
  await client.pushBlob(at, blobOf(payload));
  await writeSignatureManifest(client, at, [...kept, { mediaType: SIMPLE_SIGNING, digest: sha256Digest(payload), size: payload.length, annotations }]);
  return tag;
}

/** Signs `digest` of `repo` keylessly and writes the signature(s) next to it. */
export async function signKeyless(client: RegistryClient, repo: OciReference, digest: string, opts: KeylessSignOptions): Promise<KeylessSigned> {
  const { dsse, message } = await builders(opts);
  let bundle: Bundle;
  try {
    bundle = await dsse.create({ data: statementFor(repo, digest), type: IN_TOTO });
  } catch (err) {
    throw signingError(err, opts);
  }
  const { bundleToJSON } = await import('@sigstore/bundle');
  const referrer = await attachBundle(client, repo, digest, Buffer.from(JSON.stringify(bundleToJSON(bundle))));
  if (opts.format === 'v3') return { referrer };
  try {
    return { referrer, signatureTag: await addV2Signature(client, repo, digest, message) };
  } catch (err) {
    throw err instanceof DiginfraError ? err : signingError(err, opts);
  }
}

/**
 * The OIDC identity token to sign with: the file given, else `SIGSTORE_ID_TOKEN`, else the CI's own
 * (GitHub Actions with `permissions: id-token: write`, Buildkite). Read before anything is pushed.
 */
export async function resolveIdentityToken(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (file !== undefined) {
    const { readFile } = await import('node:fs/promises');
    let token: string;
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new DiginfraError('USAGE', `cannot read the identity token ${file}: ${messageOf(err)}`, { cause: err });
    }
    if (token === '') throw new DiginfraError('USAGE', `the identity token file ${file} is empty`);
    return token;
  }
  const fromEnv = env.SIGSTORE_ID_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const { CIContextProvider } = await import('@sigstore/sign');
  try {
    return await new CIContextProvider('sigstore').getToken();
  } catch {
    throw new DiginfraError('USAGE', 'keyless signing needs an OIDC identity token, and none was found', {
      hint: 'give --identity-token FILE or SIGSTORE_ID_TOKEN; on GitHub Actions, grant the job `permissions: id-token: write`',
    });
  }
}
