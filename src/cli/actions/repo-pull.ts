import { resolve } from 'node:path';
import { hostPlatform, parsePlatform } from '../../artifact/format.js';
import { extractArtifact, resolveArtifact } from '../../artifact/pull.js';
import { formatReference, parseOciReference } from '../../reference/reference.js';
import { formatPlatform } from '../../registry/media-types.js';
import { loadCliConfig, openRegistry, verifierFor, type RegistryFlagOptions } from '../session.js';
import { outputFormat, type CliContext } from '../run.js';
import { progressReporter } from '../progress.js';

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
    // On a terminal, a byte counter per layer (the same as artifact install's); nothing otherwise.
    const progress = process.stderr.isTTY === true && format !== 'json' ? progressReporter(ctx, false) : undefined;
    const label = `${artifact.config.name} ${artifact.config.version}`;
    const started = new Set<string>();
    let files: string[];
    try {
      ({ files } = await extractArtifact(client, artifact, dest, {
        skipIdentical: true,
        ...(progress && {
          onProgress: (layer, bytes, done) => {
            if (!started.has(layer.digest)) {
              started.add(layer.digest);
              progress({ kind: 'start', artifact: label, digest: layer.digest, size: layer.size, cached: false });
            }
            // `done` comes after the digest check: a tampered layer never shows as done.
            progress(done ? { kind: 'done', artifact: label, digest: layer.digest, size: layer.size, cached: false } : { kind: 'bytes', artifact: label, digest: layer.digest, size: layer.size, bytes });
          },
        }),
      }));
    } catch (err) {
      // The error goes on a line of its own, not after an unfinished progress line.
      if (started.size > 0) process.stderr.write('\n');
      throw err;
    }
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
