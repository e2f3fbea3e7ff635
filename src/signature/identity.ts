/**
 * Who a Fulcio certificate says signed, and whether that is who a keyless policy wants. Reading the
 * claims is done on a certificate sigstore-js has already verified; the comparison is cosign's:
 * exact strings, or RE2 regexps searched unanchored (policy.ts), the issuer from
 * Fulcio's OIDC issuer extension, the GitHub workflow claims from its 1.3.6.1.4.1.57264.1.2-6
 * extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
 */
import type { X509Certificate } from '@sigstore/core';
import { re2Search, type GithubWorkflowClaims, type KeylessPolicy } from './policy.js';

const OID_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';
const OID_ISSUER_V2 = '1.3.6.1.4.1.57264.1.8';
/** Fulcio's otherName SAN for a username identity. */
const OID_USERNAME_SAN = '1.3.6.1.4.1.57264.1.7';
/** The deprecated (raw string) workflow extensions: the ones cosign's --certificate-github-workflow-* read. */
const WORKFLOW_OIDS: Record<keyof GithubWorkflowClaims, string> = {
  trigger: '1.3.6.1.4.1.57264.1.2',
  sha: '1.3.6.1.4.1.57264.1.3',
  name: '1.3.6.1.4.1.57264.1.4',
  repository: '1.3.6.1.4.1.57264.1.5',
  ref: '1.3.6.1.4.1.57264.1.6',
};

/** The identity claims of a signing certificate. */
export interface CertificateClaims {
  /** Subject alternative names (Fulcio puts one: a URI for workflows, an email for people). */
  readonly identities: readonly string[];
  readonly issuer?: string;
  readonly githubWorkflow: GithubWorkflowClaims;
}

/** The claims of `cert`, as cosign reads them. */
export function certificateClaims(cert: X509Certificate): CertificateClaims {
  // Fulcio issues one SAN: a URI (workflows, SPIFFE), an email (people) or a username otherName.
  const san = cert.extSubjectAltName;
  const identities = [san?.uri, san?.rfc822Name, san?.otherName(OID_USERNAME_SAN)].filter((i): i is string => i !== undefined);
  // v2 is a DER UTF8String; v1 (older certificates) the raw bytes of the string.
  const v2 = cert.extension(OID_ISSUER_V2);
  const issuer = v2 !== undefined ? v2.valueObj.subs[0]?.value.toString('utf8') : cert.extension(OID_ISSUER_V1)?.value.toString('utf8');
  const githubWorkflow: Record<string, string> = {};
  for (const [claim, oid] of Object.entries(WORKFLOW_OIDS)) {
    const value = cert.extension(oid)?.value.toString('utf8');
    if (value !== undefined) githubWorkflow[claim] = value;
  }
  return { identities, ...(issuer !== undefined && { issuer }), githubWorkflow };
}

/** Why `claims` do not satisfy `policy`, one phrase each (empty when they do). Pure. */
export function identityMismatches(policy: KeylessPolicy, claims: CertificateClaims): string[] {
  const out: string[] = [];
  const names = claims.identities.length > 0 ? claims.identities.map((i) => `"${i}"`).join(', ') : 'no identity';
  if (policy.identity !== undefined && !claims.identities.includes(policy.identity)) {
    out.push(`identity ${names} is not "${policy.identity}"`);
  }
  if (policy.identityRegexp !== undefined && !claims.identities.some((i) => re2Search(policy.identityRegexp!, i))) {
    out.push(`identity ${names} does not match "${policy.identityRegexp}"`);
  }
  const issuer = claims.issuer === undefined ? 'no OIDC issuer' : `issuer "${claims.issuer}"`;
  if (policy.issuer !== undefined && claims.issuer !== policy.issuer) out.push(`${issuer} is not "${policy.issuer}"`);
  if (policy.issuerRegexp !== undefined && (claims.issuer === undefined || !re2Search(policy.issuerRegexp, claims.issuer))) {
    out.push(`${issuer} does not match "${policy.issuerRegexp}"`);
  }
  for (const [claim, want] of Object.entries(policy.githubWorkflow) as [keyof GithubWorkflowClaims, string][]) {
    const got = claims.githubWorkflow[claim];
    if (got !== want) out.push(`GitHub workflow ${claim} ${got === undefined ? 'is absent' : `"${got}"`}, not "${want}"`);
  }
  return out;
}

/** The claims in a few words: `"https://github.com/…@refs/tags/v1" (issuer "https://token…")`. */
export function describeClaims(claims: CertificateClaims): string {
  const who = claims.identities.length > 0 ? claims.identities.map((i) => `"${i}"`).join(', ') : 'no identity';
  return `${who} (issuer ${claims.issuer === undefined ? 'absent' : `"${claims.issuer}"`})`;
}
