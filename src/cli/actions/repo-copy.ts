import { copyArtifact, type Place, parseLayoutRef } from '../../artifact/index.js';
import { cacheRoot } from '../../config/index.js';
import { BlobCache } from '../../content/index.js';
import { parseOciReference } from '../../reference/index.js';
import { checkAllowed } from '../../registry/index.js';
import { outputFormat, type CliContext } from '../run.js';
import { loadCliConfig, openRegistry, type RegistryFlagOptions } from '../session.js';

interface CopyFlags extends RegistryFlagOptions {
  withSignatures?: boolean;
  output?: string;
}

/** A registry reference, or `oci:DIR[:TAG|@DIGEST]` for an OCI image layout directory. */
function placeOf(text: string): Place {
  const layout = parseLayoutRef(text);
  return layout ? { kind: 'layout', ref: layout } : { kind: 'registry', ref: parseOciReference(text) };
}

export async function runCopy(ctx: CliContext, srcText: string, dstText: string, flags: CopyFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const src = placeOf(srcText);
  const dst = placeOf(dstText);
  const config = await loadCliConfig(ctx);
  // registry.allowed applies to what is read; where the copy goes is the user's to say.
  if (src.kind === 'registry') checkAllowed(config.registry, src.ref);
  const client = await openRegistry(ctx, flags, config);
  try {
    const result = await copyArtifact(client, src, dst, {
      cache: new BlobCache(cacheRoot(config)),
      signatures: flags.withSignatures === true,
      onProgress: (e) => ctx.logger.debug({ step: e.step }, e.detail),
    });
    if (flags.withSignatures && !result.signatures) ctx.logger.warn(`${srcText} has no cosign signatures to copy`);
    if (format === 'json') {
      ctx.out(JSON.stringify({ source: srcText, target: result.target, digest: result.digest, signatures: result.signatures }, null, 2));
    } else {
      ctx.out(`copied ${srcText} to ${result.target}${result.target.includes('@') ? '' : `@${result.digest}`}${result.signatures ? ', with its signatures' : ''}`);
    }
  } finally {
    await client.close();
  }
}
