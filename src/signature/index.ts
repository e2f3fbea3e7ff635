/**
 * Signatures: what install, follow, pull, copy and `repo verify` call. A policy (an index entry's
 * `signature.cosign`, `repo verify` flags, or configured keys) says who must have signed; the trust
 * root says which Sigstore services vouch for that; verifyArtifact says yes (Verified) or why not
 * (SignatureError). docs/signatures.md.
 */
export {
  describePolicy,
  entriesForRepository,
  keyFilesPolicy,
  parsePolicy,
  policyOf,
  signatureProblems,
  type GithubWorkflowClaims,
  type PolicyEntry,
  type KeyedPolicy,
  type KeylessPolicy,
  type KeySource,
  type SignaturePolicy,
} from './policy.js';
export { fingerprintOf, isDigestTag, loadPrivateKey, loadPublicKeys, signatureSummary, signatureTag, signDigest } from './cosign.js';
export { describeClaims, type CertificateClaims } from './identity.js';
export { findBundleReferrers, findCosignV2Signatures, signaturesState, type FoundSignature, type SignatureSource } from './find.js';
export { fetchKeyPem } from './key-url.js';
export { DEFAULT_FULCIO_URL, DEFAULT_REKOR_URL, resolveIdentityToken, signKeyless, type KeylessSigned, type KeylessSignOptions } from './keyless-sign.js';
export { policiesFor, type AppliedPolicy, type KeyFiles, type PolicyIndex, type PolicySubject } from './policies.js';
export { createVerification, verifyUnder, type Verification, type VerificationOptions, type VerificationResult } from './verification.js';
export { loadTrustMaterial, PUBLIC_GOOD_TUF, trustFromJson, trustLoader, type TrustOptions, type TrustRoot } from './trust.js';
export { SignatureError, verifyArtifact, type Rejected, type Verified, type VerifyContext } from './verify.js';

export { signatureManifest } from './cosign.js';
export type { SignatureLayer } from './cosign.js';
