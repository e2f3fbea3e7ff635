/**
 * The signature policy of an index entry: its `signature.cosign` block, in falcoctl's spelling of
 * cosign's `verify` flags (docs/signatures.md). Parsing is pure; verification lives in src/signature/.
 *
 * ```yaml
 * signature:
 *   cosign:
 *     certificate-oidc-issuer: https://token.actions.githubusercontent.com
 *     certificate-identity-regexp: https://github.com/falcosecurity/plugins/
 * ```
 *
 * An empty string is the same as an absent field (real indexes list every field, most of them "").
 * Unknown fields are errors, not ignored: a constraint diginfractl would not enforce must not look
 * enforced.
 */
import { createPublicKey } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { RE2JS } from 're2js';
import { DiginfraError, messageOf } from '../errors.js';
import { registryKey } from '../reference/index.js';

/**
 * What policy lookup reads of an index entry (src/indexes' IndexEntry has these fields): its name and
 * type, where its artifact lives, and its `signature` block, kept as the index wrote it.
 */
export interface PolicyEntry {
  readonly name: string;
  readonly type: string;
  readonly registry: string;
  readonly repository: string;
  readonly signature?: unknown;
}

/** Claims of a GitHub Actions workflow that Fulcio puts in the certificate (cosign's `--certificate-github-workflow-*`). */
export interface GithubWorkflowClaims {
  readonly trigger?: string;
  readonly sha?: string;
  readonly name?: string;
  readonly repository?: string;
  readonly ref?: string;
}

/** A signature by a short-lived Fulcio certificate, bound to an OIDC identity and logged in Rekor. */
export interface KeylessPolicy {
  readonly kind: 'keyless';
  /** The certificate's subject alternative name, exactly. */
  readonly identity?: string;
  /** An RE2 regexp searched (unanchored) in the subject alternative name. */
  readonly identityRegexp?: string;
  /** The certificate's OIDC issuer, exactly. */
  readonly issuer?: string;
  /** An RE2 regexp searched (unanchored) in the OIDC issuer. */
  readonly issuerRegexp?: string;
  readonly githubWorkflow: GithubWorkflowClaims;
  /** No transparency-log entry is required; the signing time must then come from an RFC 3161 timestamp. */
  readonly ignoreTlog: boolean;
}

/** Where a public key comes from: inline PEM, a file on the verifying node, or an https URL. */
export type KeySource = { readonly pem: string } | { readonly file: string } | { readonly url: string };

/** A signature by a key pair whose public half is given. */
export interface KeyedPolicy {
  readonly kind: 'keyed';
  /** A signature made by any one of these keys counts. */
  readonly keys: readonly KeySource[];
  readonly ignoreTlog: boolean;
}

export type SignaturePolicy = KeylessPolicy | KeyedPolicy;

const WORKFLOW_FIELDS = {
  'certificate-github-workflow-trigger': 'trigger',
  'certificate-github-workflow-sha': 'sha',
  'certificate-github-workflow-name': 'name',
  'certificate-github-workflow-repository': 'repository',
  'certificate-github-workflow-ref': 'ref',
} as const satisfies Record<string, keyof GithubWorkflowClaims>;

/** Every field of a `cosign` block. `certificate-github-workflow` is falcoctl's older name of the repository claim. */
export const POLICY_FIELDS = [
  'certificate-identity',
  'certificate-identity-regexp',
  'certificate-oidc-issuer',
  'certificate-oidc-issuer-regexp',
  'certificate-github-workflow',
  ...Object.keys(WORKFLOW_FIELDS),
  'key',
  'ignore-tlog',
] as const;

/** cosign key references that name a KMS or a cluster secret: nothing here can read them. */
const UNSUPPORTED_KEY_SCHEMES = /^(k8s|gcpkms|awskms|azurekms|hashivault|pkcs11|env):/i;

function kind(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `a ${typeof v}`;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Compiles `pattern` with RE2 syntax and semantics (what cosign's Go regexp accepts: no
 * backreferences, no lookaround; linear-time matching). Throws the syntax error's message.
 */
function compileRe2(pattern: string): RE2JS {
  return RE2JS.compile(pattern);
}

/** cosign's regexp match: an unanchored search, so `https://github.com/org/` matches any workflow under it. */
export function re2Search(pattern: string, text: string): boolean {
  return compileRe2(pattern).test(text);
}

function keySource(value: string): { source?: KeySource; problem?: string } {
  const v = value.trim();
  if (v.startsWith('-----BEGIN')) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v)) return { problem: '"key" holds a private key; an index gives the public half' };
    try {
      const key = createPublicKey(v);
      if (!['ec', 'rsa', 'ed25519'].includes(key.asymmetricKeyType ?? '')) {
        return { problem: `"key" is a ${key.asymmetricKeyType ?? 'unknown'} key; cosign signatures use ECDSA, RSA or Ed25519 keys` };
      }
    } catch (err) {
      return { problem: `"key" is not a PEM public key (${messageOf(err)})` };
    }
    return { source: { pem: v } };
  }
  if (/^https:\/\//i.test(v)) {
    try {
      new URL(v);
    } catch {
      return { problem: `"key" "${v}" is not a URL` };
    }
    return { source: { url: v } };
  }
  if (/^http:\/\//i.test(v)) return { problem: `"key" "${v}" is fetched over plain http, where anyone on the path could swap it; use https` };
  if (UNSUPPORTED_KEY_SCHEMES.test(v)) return { problem: `"key" "${v}" names a KMS or secret store, which diginfractl does not read; give the public key as PEM, a file or an https URL` };
  if (/^file:\/\//i.test(v)) {
    const path = decodeURIComponent(new URL(v).pathname);
    return { source: { file: path } };
  }
  if (!isAbsolute(v)) return { problem: `"key" "${v}" is neither inline PEM, an https URL nor an absolute file path` };
  return { source: { file: v } };
}

/**
 * Pure: a `cosign` block to its policy and the problems found, one sentence per bad field. A policy
 * is returned only when there is no problem.
 */
export function checkCosignBlock(raw: unknown): { policy?: SignaturePolicy; problems: string[] } {
  if (!isMap(raw)) return { problems: [`"signature.cosign" must be a map of cosign verify settings, not ${kind(raw)}`] };
  const problems: string[] = [];
  const text: Record<string, string> = {};
  let ignoreTlog = false;
  for (const [field, value] of Object.entries(raw)) {
    if (!(POLICY_FIELDS as readonly string[]).includes(field)) {
      problems.push(`"signature.cosign" has the unknown field "${field}" (known: ${POLICY_FIELDS.join(', ')}); diginfractl will not pretend to enforce it`);
      continue;
    }
    if (field === 'ignore-tlog') {
      if (value === null || value === undefined) continue;
      if (typeof value !== 'boolean') problems.push(`"ignore-tlog" must be true or false, not ${kind(value)}`);
      else ignoreTlog = value;
      continue;
    }
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string') {
      problems.push(`"${field}" must be a string, not ${kind(value)}`);
      continue;
    }
    if (value.trim() !== '') text[field] = value;
  }
  for (const field of ['certificate-identity-regexp', 'certificate-oidc-issuer-regexp']) {
    const pattern = text[field];
    if (pattern === undefined) continue;
    try {
      compileRe2(pattern);
    } catch (err) {
      problems.push(`"${field}" "${pattern}" is not an RE2 regexp (${messageOf(err)})`);
    }
  }
  const legacyRepo = text['certificate-github-workflow'];
  const repo = text['certificate-github-workflow-repository'];
  if (legacyRepo !== undefined && repo !== undefined && legacyRepo !== repo) {
    problems.push('"certificate-github-workflow" and "certificate-github-workflow-repository" name different repositories; keep the second');
  }
  const identityFields = Object.keys(text).filter((f) => f.startsWith('certificate-'));
  const key = text.key;
  if (key !== undefined) {
    if (identityFields.length > 0) {
      problems.push(`"key" and ${identityFields.map((f) => `"${f}"`).join(', ')} are exclusive: a key-pair signature has no certificate identity`);
    }
    const { source, problem } = keySource(key);
    if (problem !== undefined) problems.push(problem);
    if (problems.length > 0 || source === undefined) return { problems };
    return { policy: { kind: 'keyed', keys: [source], ignoreTlog }, problems };
  }
  if (text['certificate-identity'] !== undefined && text['certificate-identity-regexp'] !== undefined) {
    problems.push('set "certificate-identity" or "certificate-identity-regexp", not both');
  }
  if (text['certificate-oidc-issuer'] !== undefined && text['certificate-oidc-issuer-regexp'] !== undefined) {
    problems.push('set "certificate-oidc-issuer" or "certificate-oidc-issuer-regexp", not both');
  }
  if (identityFields.length === 0) {
    problems.push('"signature.cosign" sets neither "key" nor a certificate identity and issuer: it would verify nothing');
    return { problems };
  }
  // As cosign: a keyless signature is only meaningful for a named signer from a named issuer.
  if (text['certificate-identity'] === undefined && text['certificate-identity-regexp'] === undefined) {
    problems.push('a keyless policy needs "certificate-identity" or "certificate-identity-regexp" (who signs)');
  }
  if (text['certificate-oidc-issuer'] === undefined && text['certificate-oidc-issuer-regexp'] === undefined) {
    problems.push('a keyless policy needs "certificate-oidc-issuer" or "certificate-oidc-issuer-regexp" (who vouches for the signer)');
  }
  if (problems.length > 0) return { problems };
  const githubWorkflow: Record<string, string> = {};
  for (const [field, claim] of Object.entries(WORKFLOW_FIELDS)) {
    const value = text[field] ?? (claim === 'repository' ? legacyRepo : undefined);
    if (value !== undefined) githubWorkflow[claim] = value;
  }
  const policy: KeylessPolicy = {
    kind: 'keyless',
    ...(text['certificate-identity'] !== undefined && { identity: text['certificate-identity'] }),
    ...(text['certificate-identity-regexp'] !== undefined && { identityRegexp: text['certificate-identity-regexp'] }),
    ...(text['certificate-oidc-issuer'] !== undefined && { issuer: text['certificate-oidc-issuer'] }),
    ...(text['certificate-oidc-issuer-regexp'] !== undefined && { issuerRegexp: text['certificate-oidc-issuer-regexp'] }),
    githubWorkflow,
    ignoreTlog,
  };
  return { policy, problems };
}

/** Problems of an index entry's `signature` field (empty when it is fine or absent): for validateIndex. */
export function signatureProblems(signature: unknown): string[] {
  if (signature === undefined || signature === null) return [];
  if (!isMap(signature)) return [`"signature" must be a map with a "cosign" block, not ${kind(signature)}`];
  const out: string[] = [];
  for (const k of Object.keys(signature)) {
    if (k !== 'cosign') out.push(`"signature" has the unknown kind "${k}"; diginfractl verifies "cosign" signatures only`);
  }
  if (signature.cosign !== undefined && signature.cosign !== null) out.push(...checkCosignBlock(signature.cosign).problems);
  return out;
}

/**
 * A `cosign` block (an index entry's, or one built from `repo verify` flags) to its policy. Throws
 * USAGE naming `where` and every bad field.
 */
export function parsePolicy(cosign: unknown, where = 'the signature policy'): SignaturePolicy {
  const { policy, problems } = checkCosignBlock(cosign);
  if (policy === undefined || problems.length > 0) {
    throw new DiginfraError('USAGE', `${where}: ${problems.join('; ')}`, {
      hint: 'see docs/signatures.md for the fields of a cosign policy',
    });
  }
  return policy;
}

/**
 * The policy an index entry declares, or undefined when it declares none. Entries come validated from
 * the index cache; an entry that is not throws INDEX_INVALID.
 */
export function policyOf(entry: Pick<PolicyEntry, 'name' | 'signature'>, indexName: string): SignaturePolicy | undefined {
  const problems = signatureProblems(entry.signature);
  if (problems.length > 0) {
    throw new DiginfraError('INDEX_INVALID', `index "${indexName}": entry "${entry.name}": ${problems.join('; ')}`, {
      hint: `run "diginfractl index update ${indexName}"; if it persists, ask the index maintainer to fix the entry`,
    });
  }
  const cosign = isMap(entry.signature) ? entry.signature.cosign : undefined;
  return cosign === undefined || cosign === null ? undefined : checkCosignBlock(cosign).policy;
}

/** A keyed policy from configured key files (`registry.cosignKeys`, `--verify-key`): for artifacts no index covers. */
export function keyFilesPolicy(paths: readonly string[]): KeyedPolicy {
  return { kind: 'keyed', keys: paths.map((file) => ({ file })), ignoreTlog: false };
}

/** The policy in words, for refusals and `artifact info`. */
export function describePolicy(policy: SignaturePolicy): string {
  if (policy.kind === 'keyed') {
    const where = policy.keys.map((k) => ('pem' in k ? 'the inline public key' : `the key ${'file' in k ? k.file : k.url}`));
    return `signed with ${where.join(' or ')}`;
  }
  const who = policy.identity !== undefined ? `identity "${policy.identity}"` : `identity matching "${policy.identityRegexp}"`;
  const by = policy.issuer !== undefined ? `issuer "${policy.issuer}"` : `issuer matching "${policy.issuerRegexp}"`;
  const claims = Object.entries(policy.githubWorkflow).map(([k, v]) => `workflow ${k} "${v}"`);
  return [`signed keylessly by ${who}`, by, ...claims].join(', ');
}

/**
 * The entries of the given indexes that describe `registry/repository`: how a full OCI reference
 * finds the policies that apply to it (every one of them must hold). Pure.
 */
export function entriesForRepository<E extends Pick<PolicyEntry, 'registry' | 'repository'>>(
  entries: Iterable<E>,
  registry: string,
  repository: string,
): E[] {
  const host = registryKey(registry);
  const out: E[] = [];
  for (const e of entries) {
    if (registryKey(e.registry) === host && e.repository === repository) out.push(e);
  }
  return out;
}
