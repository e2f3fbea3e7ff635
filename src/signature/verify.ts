/**
 * The one entry point that decides whether an artifact's digest is signed as its policy requires:
 * keyed policies go to cosign.ts (key-pair signatures in cosign's format), keyless ones look for
 * both cosign v2 signatures and v3 bundles (find.ts) and verify them with sigstore-js (keyless.ts).
 * One valid signature that satisfies the policy is enough. A refusal is a SignatureError naming the
 * reference, the digest, what the policy wants and what each signature found had.
 *
 * Verification is on the digest, before anything is extracted: the caller passes the root digest of
 * the artifact (its manifest, or its image index for a multi-platform one).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { DiginfraError, messageOf, type ErrorCode } from '../errors.js';
import { describePolicy, type KeylessPolicy, type KeySource, type SignaturePolicy } from './policy.js';
import { formatReference, type OciReference } from '../reference/index.js';
import { loadPublicKeys, signatureTag, verifyDigest } from './cosign.js';
import { findBundleReferrers, findCosignV2Signatures, type FoundSignature, type SignatureSource } from './find.js';
import { describeClaims, type CertificateClaims } from './identity.js';
import { COSIGN_SIGN_PREDICATE, verifyBundle, type PayloadExpectation } from './keyless.js';
import type { TrustRoot } from './trust.js';

export interface VerifyContext {
  /** The trust root, or how to load it: only keyless policies need one, and it is loaded once. */
  trust?: TrustRoot | (() => Promise<TrustRoot>);
  /** Fetches the PEM of a policy key given as an https URL (the caller's HTTP client). */
  fetchKey?: (url: string) => Promise<string>;
  /** Where the policy comes from (`index "falcosecurity", entry "cloudtrail"`), named in refusals. */
  policyFrom?: string;
}

/** What verified: which signature, and for a keyless one, who signed and when the log saw it. */
export interface Verified {
  /** `registry/repository[:tag]` as asked for. */
  readonly reference: string;
  readonly digest: string;
  readonly policy: string;
  readonly format: 'cosign-v2' | 'sigstore-bundle' | 'key';
  /** Where the signature was found: `tag sha256-….sig, layer 1`, `referrer sha256:…`. */
  readonly where: string;
  readonly signer?: CertificateClaims;
  /** ISO time the transparency log integrated the signature. */
  readonly integratedTime?: string;
}

/** Why one signature found did not count. */
export interface Rejected {
  readonly where: string;
  readonly why: string;
  /** The certificate's claims, when it verified but named someone else. */
  readonly signer?: CertificateClaims;
}

/** A refusal: SIGNATURE_MISSING, SIGNATURE_INVALID or SIGNATURE_IDENTITY, with what was found. */
export class SignatureError extends DiginfraError {
  readonly reference: string;
  readonly digest: string;
  readonly policy: string;
  readonly rejected: readonly Rejected[];

  constructor(code: ErrorCode, init: { reference: string; digest: string; policy: string; rejected: readonly Rejected[]; message: string; hint: string; cause?: unknown }) {
    super(code, init.message, { hint: init.hint, ...(init.cause !== undefined && { cause: init.cause }) });
    this.reference = init.reference;
    this.digest = init.digest;
    this.policy = init.policy;
    this.rejected = init.rejected;
  }
}

async function publicKeyOf(source: KeySource, ctx: VerifyContext): Promise<KeyObject> {
  if ('file' in source) return loadPublicKeys([source.file])[0]!;
  let pem: string;
  if ('pem' in source) pem = source.pem;
  else {
    if (ctx.fetchKey === undefined) throw new DiginfraError('USAGE', `the policy's key ${source.url} is a URL, and nothing was given to fetch it with`);
    pem = await ctx.fetchKey(source.url);
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new DiginfraError('SIGNATURE_INVALID', `the policy's key${'url' in source ? ` from ${source.url}` : ''} is not a PEM public key (${messageOf(err)})`, { cause: err });
  }
}

function refusal(code: ErrorCode, reference: string, digest: string, policy: string, rejected: readonly Rejected[], message: string, hint: string, cause?: unknown): SignatureError {
  return new SignatureError(code, { reference, digest, policy, rejected, message, hint, ...(cause !== undefined && { cause }) });
}

async function verifyKeyed(source: SignatureSource, repo: OciReference, digest: string, policy: SignaturePolicy & { kind: 'keyed' }, ctx: VerifyContext, reference: string, wants: string): Promise<Verified> {
  const keys = await Promise.all(policy.keys.map((k) => publicKeyOf(k, ctx)));
  try {
    await verifyDigest(source, repo, digest, keys);
  } catch (err) {
    if (err instanceof DiginfraError && (err.code === 'SIGNATURE_MISSING' || err.code === 'SIGNATURE_INVALID')) {
      throw refusal(err.code, reference, digest, wants, [], `${err.message}; its policy requires: ${wants}`, err.hint ?? '', err);
    }
    throw err;
  }
  return { reference, digest, policy: wants, format: 'key', where: `tag ${signatureTag(digest)}` };
}

async function trustOf(ctx: VerifyContext): Promise<TrustRoot> {
  if (ctx.trust === undefined) throw new DiginfraError('USAGE', 'a keyless signature policy applies, and no Sigstore trust root was given to verify it with');
  return typeof ctx.trust === 'function' ? ctx.trust() : ctx.trust;
}

function expectationFor(found: FoundSignature, digest: string): PayloadExpectation {
  return found.format === 'cosign-v2' ? { kind: 'simple-signing', digest } : { kind: 'in-toto', digest, predicateType: COSIGN_SIGN_PREDICATE };
}

async function verifyKeyless(source: SignatureSource, repo: OciReference, digest: string, policy: KeylessPolicy, ctx: VerifyContext, reference: string, wants: string): Promise<Verified> {
  const found = [...(await findCosignV2Signatures(source, repo, digest)), ...(await findBundleReferrers(source, repo, digest))];
  if (found.length === 0) {
    throw refusal('SIGNATURE_MISSING', reference, digest, wants, [], `${reference}@${digest} is not signed: no cosign signature at tag ${signatureTag(digest)} and no Sigstore bundle among its referrers; its policy requires: ${wants}`,
      'the publisher signs it (cosign sign in its release workflow); until then it cannot be verified');
  }
  const rejected: Rejected[] = [];
  let trust: TrustRoot | undefined;
  for (const f of found) {
    if (f.bundle === undefined) {
      rejected.push({ where: f.where, why: f.why ?? 'it could not be read' });
      continue;
    }
    trust ??= await trustOf(ctx);
    const verdict = await verifyBundle(f.bundle, f.artifact, expectationFor(f, digest), policy, trust);
    if (verdict.ok) {
      return {
        reference, digest, policy: wants, format: f.format, where: f.where, signer: verdict.claims,
        ...(verdict.integratedTime !== undefined && { integratedTime: verdict.integratedTime.toISOString() }),
      };
    }
    rejected.push({ where: f.where, why: verdict.why, ...(verdict.claims !== undefined && { signer: verdict.claims }) });
  }
  const byOthers = rejected.filter((r) => r.signer !== undefined);
  if (byOthers.length > 0) {
    const who = byOthers.map((r) => describeClaims(r.signer!)).join('; ');
    throw refusal('SIGNATURE_IDENTITY', reference, digest, wants, rejected,
      `${reference}@${digest} is signed by ${who}, but its policy requires: ${wants} (${rejected.map((r) => `${r.where}: ${r.why}`).join('; ')})`,
      'if the publisher moved its release workflow, the index entry\'s policy must follow; otherwise this is not the publisher\'s artifact');
  }
  throw refusal('SIGNATURE_INVALID', reference, digest, wants, rejected,
    `${reference}@${digest}: no signature verifies (${rejected.map((r) => `${r.where}: ${r.why}`).join('; ')}); its policy requires: ${wants}`,
    'a signature that does not verify is treated as no signature: the artifact may have been tampered with, or signed for another trust root');
}

/**
 * Verifies that `digest` of `repo` is signed as `policy` requires. Returns what verified; throws a
 * SignatureError (SIGNATURE_MISSING, SIGNATURE_INVALID, SIGNATURE_IDENTITY) otherwise, and passes
 * registry errors (NETWORK, AUTH_REQUIRED...) through: those mean "could not check", not "refused".
 */
export async function verifyArtifact(source: SignatureSource, repo: OciReference, digest: string, policy: SignaturePolicy, ctx: VerifyContext = {}): Promise<Verified> {
  // The tag the user asked for, if any, helps them recognise it; the digest is what was checked.
  const reference = formatReference({ registry: repo.registry, repository: repo.repository, ...(repo.tag !== undefined && { tag: repo.tag }) }, { defaultTag: false });
  const wants = `${describePolicy(policy)}${ctx.policyFrom !== undefined ? ` (${ctx.policyFrom})` : ''}`;
  if (policy.kind === 'keyed') return verifyKeyed(source, repo, digest, policy, ctx, reference, wants);
  return verifyKeyless(source, repo, digest, policy, ctx, reference, wants);
}
