import { resolve } from 'node:path';
import { extractArtifact, resolveArtifact, type ResolvedArtifact, selectTag, OciLayout, layoutSource, parseLayoutRef } from '../../artifact/index.js';
import { loadConfig } from '../../config/index.js';
import { formatReference, type OciReference } from '../../reference/index.js';
import { checkAllowed, restrictReads, type ArtifactSource } from '../../registry/index.js';
import { formatPlatform, platformOrHost } from '../../platform/index.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';
import { policyIndexes, verificationFor, type VerifyFlagOptions } from '../verification.js';
import { refLocator } from './locate.js';
import { interruptOnSignals, outputFormat, type CliContext } from '../run.js';
import { progressReporter } from '../progress.js';

interface PullFlags extends RegistryFlagOptions, VerifyFlagOptions {
  dest: string;
  platform?: string;
  output?: string;
}

/**
 * `repo pull REF... --dest DIR`: every reference is resolved (short names through the indexes,
 * floating tags to their newest release) and verified under the signature policies that apply to it
 * (docs/signatures.md) before any file is written; then
 * each artifact is extracted in turn. A file that a later artifact also ships is overwritten, with a
 * warning.
 */
interface Pulled {
  artifact: ResolvedArtifact;
  source: ArtifactSource;
  /** How the output names it: the registry reference, or `oci:DIR[:TAG]@DIGEST`. */
  label: string;
}

export async function runPull(ctx: CliContext, refTexts: string[], flags: PullFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const platform = platformOrHost(flags.platform);
  const dest = resolve(flags.dest);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const locate = refLocator(ctx, loaded);
  const verification = await verificationFor(ctx, loaded.config, flags, policyIndexes(ctx, loaded));
  // From here a SIGINT/SIGTERM abandons the pull (exit 130/143): the transfer stops, staging is removed.
  const interrupt = interruptOnSignals();
  // registry.allowed: nothing outside it is read, whether typed or found through an index.
  const client = restrictReads(await openRegistry(ctx, flags, loaded.config, { signal: interrupt.signal }), loaded.config.registry);
  try {
    const artifacts: Pulled[] = [];
    for (const refText of refTexts) {
      // An OCI image layout on disk (what `repo copy ... oci:DIR` wrote): read offline, checked the same way.
      const layout = parseLayoutRef(refText);
      const source: ArtifactSource = layout ? layoutSource(new OciLayout(layout.dir)) : client;
      let ref: OciReference;
      if (layout) {
        ref = { registry: 'oci', repository: layout.dir, ...(layout.digest !== undefined ? { digest: layout.digest } : { tag: layout.tag ?? 'latest' }) };
      } else {
        const { repo, tag, digest } = await locate(refText);
        ref = digest ? { ...repo, ...(tag !== undefined && { tag }), digest } : { ...repo, tag: await selectTag(client, repo, tag) };
      }
      if (!layout) checkAllowed(loaded.config.registry, ref);
      const artifact = await resolveArtifact(source, ref, platform);
      // Before anything is written: an unsigned or wrongly signed artifact leaves the destination as it was.
      const checked = await verification?.verify(source, artifact.ref, { registry: ref.registry, repository: ref.repository, name: artifact.config.name, type: artifact.type });
      for (const v of checked?.verified ?? []) ctx.logger.debug({ digest: artifact.ref.digest, where: v.where }, `${refText}: signed as its policy requires (${v.policy})`);
      const label = layout ? `oci:${layout.dir}${layout.tag !== undefined ? `:${layout.tag}` : ''}@${artifact.ref.digest}` : formatReference(artifact.ref);
      artifacts.push({ artifact, source, label });
    }
    // On a terminal, a byte counter per layer (the same as artifact install's); nothing otherwise.
    const progress = process.stderr.isTTY === true && format !== 'json' ? progressReporter(ctx, false) : undefined;
    const pulled: { artifact: ResolvedArtifact; label: string; files: string[] }[] = [];
    const owner = new Map<string, string>();
    for (const { artifact, source, label: reference } of artifacts) {
      const label = `${artifact.config.name} ${artifact.config.version}`;
      const files = await extractOne(source, artifact, dest, label, progress, interrupt.signal);
      for (const f of files) {
        const earlier = owner.get(f);
        if (earlier !== undefined && earlier !== label) ctx.logger.warn(`${resolve(dest, f)} of ${earlier} was overwritten by the one of ${label}`);
        owner.set(f, label);
      }
      pulled.push({ artifact, label: reference, files });
    }
    if (format === 'json') {
      const out = pulled.map(({ artifact, label, files }) => ({
        reference: label,
        digest: artifact.ref.digest,
        manifestDigest: artifact.manifestDigest,
        type: artifact.type,
        name: artifact.config.name,
        version: artifact.config.version,
        ...(artifact.platform && { platform: formatPlatform(artifact.platform) }),
        dest,
        files,
      }));
      // An array in the order given, whatever the number of references: one shape for scripts.
      ctx.out(JSON.stringify(out, null, 2));
      return;
    }
    for (const { artifact, label, files } of pulled) {
      ctx.out(`pulled ${label} (${artifact.type} ${artifact.config.name} ${artifact.config.version}${artifact.platform ? `, ${formatPlatform(artifact.platform)}` : ''})`);
      for (const f of files) ctx.out(`  ${resolve(dest, f)}`);
    }
  } finally {
    await client.close();
    interrupt.dispose();
  }
}

async function extractOne(
  client: ArtifactSource,
  artifact: ResolvedArtifact,
  dest: string,
  label: string,
  progress: ReturnType<typeof progressReporter> | undefined,
  signal: AbortSignal,
): Promise<string[]> {
  const started = new Set<string>();
  try {
    const { files } = await extractArtifact(client, artifact, dest, {
      skipIdentical: true,
      signal,
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
    });
    return files;
  } catch (err) {
    // The error goes on a line of its own, not after an unfinished progress line.
    if (started.size > 0) process.stderr.write('\n');
    throw err;
  }
}
