import { formatReference, parseOciReference, type OciReference } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
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

interface SignFlags extends RegistryFlagOptions {
  key: string;
  output?: string;
}

/** `repo sign REF --key FILE`: a cosign signature of the digest REF points at (the image index for a multi-platform plugin). */
export async function runSign(ctx: CliContext, refText: string, flags: SignFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const ref = parseOciReference(refText);
  const key = loadPrivateKey(flags.key);
  const client = await openRegistry(ctx, flags);
  try {
    const digest = await contentDigest(client, ref);
    const tag = await signDigest(client, ref, digest, key);
    const signed = `${ref.registry}/${ref.repository}@${digest}`;
    const at = `${ref.registry}/${ref.repository}:${tag}`;
    if (format === 'json') ctx.out(JSON.stringify({ reference: formatReference({ ...ref, digest }), digest, signature: at }, null, 2));
    else ctx.out(`signed ${signed}\n  signature: ${at}`);
  } finally {
    await client.close();
  }
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
  const client = await openRegistry(ctx, flags);
  try {
    const digest = await contentDigest(client, ref);
    await verifyDigest(client, ref, digest, keys);
    const verified = `${ref.registry}/${ref.repository}@${digest}`;
    if (format === 'json') ctx.out(JSON.stringify({ reference: formatReference({ ...ref, digest }), digest, verified: true }, null, 2));
    else ctx.out(`verified ${verified}: a cosign signature checks out with the given key(s)`);
  } finally {
    await client.close();
  }
}
