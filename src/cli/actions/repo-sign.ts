import { formatReference, parseOciReference } from '../../reference/reference.js';
import { loadPrivateKey, signDigest } from '../../signature/cosign.js';
import { outputFormat, type CliContext } from '../run.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';

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
    const digest = ref.digest ?? (await client.resolve(ref)).digest;
    const tag = await signDigest(client, ref, digest, key);
    const signed = `${ref.registry}/${ref.repository}@${digest}`;
    const at = `${ref.registry}/${ref.repository}:${tag}`;
    if (format === 'json') ctx.out(JSON.stringify({ reference: formatReference({ ...ref, digest }), digest, signature: at }, null, 2));
    else ctx.out(`signed ${signed}\n  signature: ${at}`);
  } finally {
    await client.close();
  }
}
