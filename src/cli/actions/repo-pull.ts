import { resolve } from 'node:path';
import { hostPlatform, parsePlatform } from '../../artifact/format.js';
import { extractArtifact, resolveArtifact } from '../../artifact/pull.js';
import { formatReference, parseOciReference } from '../../reference/reference.js';
import { formatPlatform } from '../../registry/media-types.js';
import { loadCliConfig, openRegistry, verifierFor, type RegistryFlagOptions } from '../session.js';
import { outputFormat, type CliContext } from '../run.js';

interface PullFlags extends RegistryFlagOptions {
  dest: string;
  platform?: string;
  output?: string;
  verifyKey?: string[];
}

export async function runPull(ctx: CliContext, refText: string, flags: PullFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const ref = parseOciReference(refText);
  const platform = flags.platform ? parsePlatform(flags.platform) : hostPlatform();
  const dest = resolve(flags.dest);
  const config = await loadCliConfig(ctx);
  const verify = await verifierFor(config, flags.verifyKey);
  const client = await openRegistry(ctx, flags, config);
  try {
    const artifact = await resolveArtifact(client, ref, platform);
    // Before anything is written: an unsigned or wrongly signed artifact leaves the destination as it was.
    await verify?.(client, artifact.ref);
    const { files } = await extractArtifact(client, artifact, dest, { skipIdentical: true });
    if (format === 'json') {
      ctx.out(
        JSON.stringify(
          {
            reference: formatReference(artifact.ref),
            digest: artifact.ref.digest,
            manifestDigest: artifact.manifestDigest,
            type: artifact.type,
            name: artifact.config.name,
            version: artifact.config.version,
            ...(artifact.platform && { platform: formatPlatform(artifact.platform) }),
            dest,
            files,
          },
          null,
          2,
        ),
      );
    } else {
      ctx.out(`pulled ${formatReference(artifact.ref)} (${artifact.type} ${artifact.config.name} ${artifact.config.version}${artifact.platform ? `, ${formatPlatform(artifact.platform)}` : ''})`);
      for (const f of files) ctx.out(`  ${resolve(dest, f)}`);
    }
  } finally {
    await client.close();
  }
}
