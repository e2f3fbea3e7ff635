/**
 * Verification as the commands use it: the policies that apply to an artifact (policies.ts, with the
 * configured indexes and keys), each verified on the artifact's digest (verify.ts), with one trust
 * root loaded on first need. What install, follow, pull, `repo verify` and `artifact info` share.
 */
import type { OciReference } from '../reference/index.js';
import type { SignatureSource } from './find.js';
import { policiesFor, type AppliedPolicy, type KeyFiles, type PolicyIndex, type PolicySubject } from './policies.js';
import type { TrustRoot } from './trust.js';
import { verifyArtifact, type Verified, type VerifyContext } from './verify.js';

export interface VerificationOptions {
  /** The configured indexes (loaded on first need). */
  indexes: () => Promise<readonly PolicyIndex[]>;
  /** Keys for artifacts no index policy covers. */
  keys?: KeyFiles;
  /** The trust root for keyless policies (trustLoader); without it a keyless policy cannot be verified. */
  trust?: () => Promise<TrustRoot>;
  /** Fetches a policy's key given as an https URL (fetchKeyPem). */
  fetchKey?: (url: string) => Promise<string>;
}

/** What verifying one artifact found: the policies that applied (none: nothing to check) and what verified under each. */
export interface VerificationResult {
  readonly policies: readonly AppliedPolicy[];
  readonly verified: readonly Verified[];
}

export interface Verification {
  /** The policies that apply to `subject`. */
  policiesFor(subject: PolicySubject): Promise<AppliedPolicy[]>;
  /**
   * Verifies the digest `ref` names under every policy that applies to `subject` (its registry and
   * repository, its config name and type). Throws the first refusal (a SignatureError).
   */
  verify(source: SignatureSource, ref: OciReference & { digest: string }, subject: PolicySubject): Promise<VerificationResult>;
}

/** Verifies `ref`'s digest under each of `policies` in turn; every one must hold. */
export async function verifyUnder(source: SignatureSource, ref: OciReference & { digest: string }, policies: readonly AppliedPolicy[], ctx: VerifyContext): Promise<Verified[]> {
  const verified: Verified[] = [];
  for (const p of policies) verified.push(await verifyArtifact(source, ref, ref.digest, p.policy, { ...ctx, policyFrom: p.from }));
  return verified;
}

export function createVerification(opts: VerificationOptions): Verification {
  const ctx: VerifyContext = { ...(opts.trust !== undefined && { trust: opts.trust }), ...(opts.fetchKey !== undefined && { fetchKey: opts.fetchKey }) };
  const policies = async (subject: PolicySubject) => policiesFor(subject, await opts.indexes(), opts.keys);
  return {
    policiesFor: policies,
    async verify(source, ref, subject) {
      const applied = await policies(subject);
      return { policies: applied, verified: await verifyUnder(source, ref, applied, ctx) };
    },
  };
}
