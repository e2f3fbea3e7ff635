import { copyArtifact } from '../../artifact/copy.js';
import { cacheRoot } from '../../config/paths.js';
import { BlobCache } from '../../install/cache.js';
import { formatReference, parseOciReference } from '../../reference/reference.js';
import { outputFormat, type CliContext } from '../run.js';
import { loadCliConfig, openRegistry, type RegistryFlagOptions } from '../session.js';

interface CopyFlags extends RegistryFlagOptions {
  withSignatures?: boolean;
  output?: string;
}

export async function runCopy(ctx: CliContext, srcText: string, dstText: string, flags: CopyFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const src = parseOciReference(srcText);
  const dst = parseOciReference(dstText);
  const config = await loadCliConfig(ctx);
  const client = await openRegistry(ctx, flags, config);
  try {
    const result = await copyArtifact(client, src, dst, {
      cache: new BlobCache(cacheRoot(config)),
      signatures: flags.withSignatures === true,
      onProgress: (e) => ctx.logger.debug({ step: e.step }, e.detail),
    });
    if (flags.withSignatures && !result.signatures) ctx.logger.warn(`${formatReference(src)} has no cosign signatures to copy`);
    if (format === 'json') {
      ctx.out(JSON.stringify({ source: formatReference(src), reference: formatReference(result.ref), digest: result.ref.digest, signatures: result.signatures }, null, 2));
    } else {
      ctx.out(`copied ${formatReference(src)} to ${formatReference(result.ref)}${result.signatures ? ', with its signatures' : ''}`);
    }
  } finally {
    await client.close();
  }
}
