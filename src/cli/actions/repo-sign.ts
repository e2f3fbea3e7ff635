import { formatReference, parseOciReference, type OciReference } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/index.js';
import { loadPrivateKey, loadPublicKeys, signDigest, verifyDigest } from '../../signature/cosign.js';
import { outputFormat, type CliContext } from '../run.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';

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
  verifyKey: string[];
  output?: string;
}

/** `repo verify REF --verify-key FILE...`: exit 0 when a signature of the digest REF points at verifies, 1 with the reasons when none does. */
export async function runVerify(ctx: CliContext, refText: string, flags: VerifyFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const ref = parseOciReference(refText);
  const keys = loadPublicKeys(flags.verifyKey);
  await withDigest(ctx, ref, flags, async (client, digest) => {
    await verifyDigest(client, ref, digest, keys);
    if (format === 'json') ctx.out(JSON.stringify({ reference: formatReference({ ...ref, digest }), digest, verified: true }, null, 2));
    else ctx.out(`verified ${ref.registry}/${ref.repository}@${digest}: a cosign signature checks out with the given key(s)`);
  });
}
