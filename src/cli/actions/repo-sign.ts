import { selectTag } from '../../artifact/index.js';
import { loadConfig } from '../../config/index.js';
import { DiginfraError } from '../../errors.js';
import { formatReference, parseOciReference, type OciReference } from '../../reference/index.js';
import { restrictReads, type RegistryClient } from '../../registry/index.js';
import { loadPrivateKey, signDigest } from '../../signature/index.js';
import type { AppliedPolicy } from '../../signature/index.js';
import { outputFormat, type CliContext } from '../run.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';
import { keyFilesOf, policyIndexes, trustFor } from '../verification.js';
import { refLocator } from './locate.js';

/**
 * The digest of what `ref` points at, hashed here from the manifest's bytes: a registry's
 * Docker-Content-Digest header alone must not choose what gets signed.
 */
async function contentDigest(client: RegistryClient, ref: OciReference): Promise<string> {
  return (await client.fetchManifest(ref)).descriptor.digest;
}

/**
 * Runs `fn` on the digest `ref` points at, hashed from the manifest's bytes (contentDigest), with
 * a registry client that is closed afterwards.
 */
async function withDigest(ctx: CliContext, ref: OciReference, flags: RegistryFlagOptions, fn: (client: RegistryClient, digest: string) => Promise<void>): Promise<void> {
  const client = await openRegistry(ctx, flags);
  try {
    await fn(client, await contentDigest(client, ref));
  } finally {
    await client.close();
  }
}

interface SignFlags extends RegistryFlagOptions {
  key: string;
  output?: string;
}

/** `repo sign REF --key FILE`: a cosign signature of the digest REF points at (the image index for a multi-platform plugin). */
export async function runSign(ctx: CliContext, refText: string, flags: SignFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const ref = parseOciReference(refText);
  const key = loadPrivateKey(flags.key);
  await withDigest(ctx, ref, flags, async (client, digest) => {
    const tag = await signDigest(client, ref, digest, key);
    const at = `${ref.registry}/${ref.repository}:${tag}`;
    if (format === 'json') ctx.out(JSON.stringify({ reference: formatReference({ ...ref, digest }), digest, signature: at }, null, 2));
    else ctx.out(`signed ${ref.registry}/${ref.repository}@${digest}\n  signature: ${at}`);
  });
}

interface VerifyFlags extends RegistryFlagOptions {
  verifyKey?: string[];
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  certificateOidcIssuerRegexp?: string;
  trustedRoot?: string;
  output?: string;
}

/** The policies the flags give (the `--certificate-*` flags as one cosign block, the keys as another), or none. */
async function flagPolicies(flags: VerifyFlags): Promise<AppliedPolicy[]> {
  const { keyFilesPolicy, parsePolicy } = await import('../../signature/index.js');
  const cosign = {
    ...(flags.certificateIdentity !== undefined && { 'certificate-identity': flags.certificateIdentity }),
    ...(flags.certificateIdentityRegexp !== undefined && { 'certificate-identity-regexp': flags.certificateIdentityRegexp }),
    ...(flags.certificateOidcIssuer !== undefined && { 'certificate-oidc-issuer': flags.certificateOidcIssuer }),
    ...(flags.certificateOidcIssuerRegexp !== undefined && { 'certificate-oidc-issuer-regexp': flags.certificateOidcIssuerRegexp }),
  };
  const out: AppliedPolicy[] = [];
  if (Object.keys(cosign).length > 0) out.push({ policy: parsePolicy(cosign, 'the --certificate-* flags'), from: 'the --certificate-* flags' });
  if (flags.verifyKey !== undefined && flags.verifyKey.length > 0) out.push({ policy: keyFilesPolicy(flags.verifyKey), from: 'the keys given with --verify-key' });
  return out;
}

/**
 * `repo verify REF`: exit 0 when the digest REF points at is signed as every policy requires, 1 with
 * the reasons when it is not. The policies are the flags' (`--certificate-identity[-regexp]` with
 * `--certificate-oidc-issuer[-regexp]`, as cosign verify; `--verify-key`), else those that apply to
 * REF (its index entries, else registry.cosignKeys: what install would check).
 */
export async function runVerify(ctx: CliContext, refText: string, flags: VerifyFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const given = await flagPolicies(flags);
  const { loadPublicKeys, policiesFor, verifyUnder, fetchKeyPem } = await import('../../signature/index.js');
  if (flags.verifyKey !== undefined) loadPublicKeys(flags.verifyKey);
  const located = await refLocator(ctx, loaded)(refText);
  const client = restrictReads(await openRegistry(ctx, flags, loaded.config), loaded.config.registry);
  try {
    const ref: OciReference = located.entry ? { ...located.repo, tag: await selectTag(client, located.repo, located.tag) } : parseOciReference(refText);
    const digest = await contentDigest(client, ref);
    let policies = given;
    if (policies.length === 0) {
      const keys = keyFilesOf(loaded.config, {});
      // Its config's name finds the policy of an artifact outside the indexed repositories (any image verifies by repository alone).
      const summary = await (await import('../../artifact/inspect.js')).inspectArtifact(client, { ...ref, digest }).catch(() => undefined);
      policies = policiesFor({ registry: ref.registry, repository: ref.repository, ...(summary && { name: summary.config.name, type: summary.type }) }, await policyIndexes(ctx, loaded)(), keys);
    }
    if (policies.length === 0) {
      throw new DiginfraError('USAGE', `no signature policy applies to ${formatReference(ref)}: no index entry describes it, and no key is configured`, {
        hint: 'give the signer: --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp] (keyless), or --verify-key FILE',
      });
    }
    const trust = await trustFor(ctx, loaded.config, flags);
    const verified = await verifyUnder(client, { ...ref, digest }, policies, { trust, fetchKey: fetchKeyPem });
    const reference = `${ref.registry}/${ref.repository}@${digest}`;
    if (format === 'json') {
      ctx.out(JSON.stringify({ reference: formatReference({ ...ref, digest }), digest, verified: true, policies: verified }, null, 2));
    } else if (given.length === 1 && flags.verifyKey !== undefined && flags.verifyKey.length > 0) {
      ctx.out(`verified ${reference}: a cosign signature checks out with the given key(s)`);
    } else {
      ctx.out(`verified ${reference}`);
      for (const v of verified) {
        const signer = v.signer !== undefined ? `, by ${v.signer.identities.join(', ')}${v.signer.issuer !== undefined ? ` (issuer ${v.signer.issuer})` : ''}` : '';
        ctx.out(`  ${v.policy}: ${v.where}${signer}${v.integratedTime !== undefined ? `, logged ${v.integratedTime}` : ''}`);
      }
    }
  } finally {
    await client.close();
  }
}
