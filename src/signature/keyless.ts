/**
 * One keyless signature (a Sigstore bundle) checked against a policy, with sigstore-js doing every
 * cryptographic check: the certificate chains to a trusted Fulcio CA and was valid at the
 * transparency log's integrated time (or an RFC 3161 timestamp), carries an SCT from a trusted CT
 * log, the log entry is signed by a trusted Rekor key and matches the signature, and the signature
 * verifies. What is left here is policy: that the signed payload names the artifact, and that the
 * certificate names the signer and issuer the policy wants.
 */
import type { Bundle } from '@sigstore/bundle';
import type { X509Certificate } from '@sigstore/core';
import type { KeylessPolicy } from './policy.js';
import { signedDigest } from './cosign.js';
import { certificateClaims, identityMismatches, type CertificateClaims } from './identity.js';
import type { TrustRoot } from './trust.js';

/** The predicate type of a cosign v3 image signature: an in-toto statement whose subject is the image. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const IN_TOTO_PAYLOAD = 'application/vnd.in-toto+json';
const IN_TOTO_STATEMENTS = new Set(['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']);

/** What the signed content must say for the signature to be about this artifact. */
export type PayloadExpectation =
  /** cosign v2: a simple-signing payload naming `digest` (the artifact's root manifest or index). */
  | { kind: 'simple-signing'; digest: string }
  /** A DSSE in-toto statement with a subject of `digest` (`sha256:…`, `sha512:…`) and this predicate type. */
  | { kind: 'in-toto'; digest: string; predicateType: string };

export type BundleVerdict =
  | { ok: true; claims: CertificateClaims; integratedTime?: Date }
  /** `invalid`: not a valid signature of this artifact; `identity`: valid, by someone else. */
  | { ok: false; stage: 'invalid' | 'identity'; why: string; claims?: CertificateClaims };

/** sigstore-js error codes in words, to prefix its own messages. */
const AREA: Record<string, string> = {
  CERTIFICATE_ERROR: 'its certificate',
  PUBLIC_KEY_ERROR: 'its key',
  SIGNATURE_ERROR: 'its signature',
  TIMESTAMP_ERROR: 'its timestamps',
  TLOG_BODY_ERROR: 'its transparency-log entry',
  TLOG_INCLUSION_PROMISE_ERROR: 'its transparency-log entry',
  TLOG_INCLUSION_PROOF_ERROR: 'its transparency-log inclusion proof',
  TLOG_MISSING_INCLUSION_ERROR: 'its transparency-log entry',
  TLOG_ERROR: 'its transparency-log entries',
  TLOG_CHECKPOINT_ERROR: 'its transparency-log checkpoint',
  TSA_ERROR: 'its RFC 3161 timestamp',
  UNTRUSTED_SIGNER_ERROR: 'its signer',
};

function sigstoreReason(err: unknown): string {
  const { code, message } = err as { code?: string; message?: string };
  return `${(code && AREA[code]) ?? 'it'} does not verify: ${message ?? String(err)}`;
}

/**
 * For a certificate refused by sigstore-js: its validity beside the log's time, when that explains
 * the refusal (a certificate used after it expired). Only words; sigstore-js made the decision.
 */
function validityNote(cert: X509Certificate, bundle: Bundle): string {
  const logged = bundle.verificationMaterial.tlogEntries.map((e) => Number(e.integratedTime) * 1000).filter((t) => t > 0);
  const outside = logged.find((t) => t < cert.notBefore.getTime() || t > cert.notAfter.getTime());
  if (outside === undefined) return '';
  return ` (it was valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}; the log integrated the signature at ${new Date(outside).toISOString()})`;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why the in-toto statement in a DSSE payload is not about `want`, or undefined when it is. */
function statementMismatch(payloadType: string, payload: Buffer, want: { digest: string; predicateType: string }): string | undefined {
  if (payloadType !== IN_TOTO_PAYLOAD) return `its DSSE payload is ${payloadType}, not an in-toto statement`;
  let statement: unknown;
  try {
    statement = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'its in-toto statement is not JSON';
  }
  if (!isMap(statement) || typeof statement._type !== 'string' || !IN_TOTO_STATEMENTS.has(statement._type)) return 'its payload is not an in-toto statement';
  if (statement.predicateType !== want.predicateType) return `it attests ${JSON.stringify(statement.predicateType)}, not a signature (${want.predicateType})`;
  const [algorithm, hex] = want.digest.split(':');
  const subjects = Array.isArray(statement.subject) ? statement.subject : [];
  const digests = subjects.map((s) => (isMap(s) && isMap(s.digest) ? s.digest : {}));
  if (digests.some((d) => d[algorithm!] === hex)) return undefined;
  const named = digests.flatMap((d) => Object.entries(d).map(([a, h]) => `${a}:${String(h)}`));
  return `it signs ${named.length > 0 ? named.join(', ') : 'no subject'}, another digest`;
}

/** Why the signed content is not about the artifact, or undefined when it is. */
function payloadMismatch(bundle: Bundle, artifact: Buffer | undefined, want: PayloadExpectation): string | undefined {
  if (want.kind === 'simple-signing') {
    if (bundle.content.$case !== 'messageSignature' || artifact === undefined) return 'it is not a cosign simple-signing signature';
    const signed = signedDigest(artifact);
    if ('why' in signed) return signed.why;
    return signed.digest === want.digest ? undefined : `it signs ${signed.digest}, another digest`;
  }
  if (bundle.content.$case !== 'dsseEnvelope') return 'it is a message signature, which does not say what it signs; an image signature is a DSSE in-toto statement';
  const { payloadType, payload } = bundle.content.dsseEnvelope;
  return statementMismatch(payloadType, Buffer.from(payload), want);
}

/**
 * Verifies `bundle` (whose signed message is `artifact` for a message signature) with `trust`, then
 * checks its payload against `want` and its certificate against `policy`. Never throws for a bad
 * signature: the verdict says why.
 */
export async function verifyBundle(bundle: Bundle, artifact: Buffer | undefined, want: PayloadExpectation, policy: KeylessPolicy, trust: TrustRoot): Promise<BundleVerdict> {
  const [{ Verifier, toSignedEntity }, { X509Certificate }] = await Promise.all([import('@sigstore/verify'), import('@sigstore/core')]);
  const material = bundle.verificationMaterial;
  if (material.content.$case === 'publicKey') return { ok: false, stage: 'invalid', why: 'it was made with a key pair, not a Fulcio certificate' };
  // ignore-tlog: log entries are neither required nor read (as cosign); a timestamp authority must date the signature.
  const checked: Bundle = policy.ignoreTlog ? { ...bundle, verificationMaterial: { ...material, tlogEntries: [] } } : bundle;
  if (policy.ignoreTlog && (material.timestampVerificationData?.rfc3161Timestamps.length ?? 0) === 0) {
    return { ok: false, stage: 'invalid', why: 'the policy sets ignore-tlog, and it carries no RFC 3161 timestamp to say when its short-lived certificate was used' };
  }
  const verifier = new Verifier(trust.material, {
    tlogThreshold: policy.ignoreTlog ? 0 : 1,
    ctlogThreshold: trust.ctlogs > 0 ? 1 : 0,
    timestampThreshold: 1,
  });
  const leaf = material.content.$case === 'certificate' ? material.content.certificate.rawBytes : material.content.x509CertificateChain.certificates[0]!.rawBytes;
  try {
    verifier.verify(toSignedEntity(checked, artifact));
  } catch (err) {
    const note = (err as { code?: string }).code === 'CERTIFICATE_ERROR' ? validityNote(X509Certificate.parse(Buffer.from(leaf)), checked) : '';
    return { ok: false, stage: 'invalid', why: `${sigstoreReason(err)}${note}` };
  }
  const mismatch = payloadMismatch(bundle, artifact, want);
  if (mismatch !== undefined) return { ok: false, stage: 'invalid', why: mismatch };
  const claims = certificateClaims(X509Certificate.parse(Buffer.from(leaf)));
  const mismatches = identityMismatches(policy, claims);
  if (mismatches.length > 0) return { ok: false, stage: 'identity', why: mismatches.join('; '), claims };
  const time = checked.verificationMaterial.tlogEntries[0]?.integratedTime;
  return { ok: true, claims, ...(time !== undefined && time !== '0' && { integratedTime: new Date(Number(time) * 1000) }) };
}
