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
  type GithubWorkflowClaims,
  type KeyedPolicy,
  type KeylessPolicy,
  type KeySource,
  type SignaturePolicy,
} from '../indexes/policy.js';
export { isDigestTag, loadPrivateKey, loadPublicKeys, signatureSummary, signaturesState, signatureTag, signDigest } from './cosign.js';
export type { CertificateClaims } from './identity.js';
export { findBundleReferrers, findCosignV2Signatures, type FoundSignature, type SignatureSource } from './find.js';
export { loadTrustMaterial, PUBLIC_GOOD_TUF, trustFromJson, type TrustOptions, type TrustRoot } from './trust.js';
export { SignatureError, verifyArtifact, type Rejected, type Verified, type VerifyContext } from './verify.js';

