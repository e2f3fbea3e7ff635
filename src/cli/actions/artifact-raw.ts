/**
 * `artifact manifest REF` and `artifact config REF`: the documents themselves, byte for byte as the
 * registry stores them (checked against the digest asked for or reported, as every fetch is), for
 * scripts and for a look at what `info` summarizes. `artifact manifest REF | sha256sum` gives the
 * digest the reference points at.
 */
import { loadConfig } from '../../config/index.js';
import { selectTag } from '../../artifact/index.js';
import { formatReference, withDigest, type OciReference } from '../../reference/index.js';
import { restrictReads, type Descriptor, type FetchedManifest, type ImageIndex, isIndexMediaType, type RegistryClient } from '../../registry/index.js';
import { chooseFromIndex, formatPlatform, parsePlatform, platformOrHost, type Platform } from '../../platform/index.js';
import { DiginfraError } from '../../errors.js';
import type { CliContext } from '../run.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';
import { refLocator } from './locate.js';

export interface RawFlags extends RegistryFlagOptions {
  platform?: string;
}

/** Runs `fetch` with a client and the reference pinned to a tag (floating tags resolved) or digest; prints its bytes. */
async function printRaw(ctx: CliContext, refText: string, flags: RawFlags, fetch: (client: RegistryClient, ref: OciReference) => Promise<Buffer>): Promise<void> {
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const { repo, tag, digest } = await refLocator(ctx, loaded)(refText);
  const client = restrictReads(await openRegistry(ctx, flags, loaded.config), loaded.config.registry);
  try {
    const ref: OciReference = digest ? { ...repo, digest } : { ...repo, tag: await selectTag(client, repo, tag) };
    const bytes = await fetch(client, ref);
    // The exact bytes: a newline added would change the digest a script computes.
    await new Promise<void>((resolve, reject) => process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())));
  } finally {
    await client.close();
  }
}

/** The manifest or image index the reference points at; with --platform, that platform's manifest. */
export async function runArtifactManifest(ctx: CliContext, refText: string, flags: RawFlags): Promise<void> {
  const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
  await printRaw(ctx, refText, flags, async (client, ref) => (await platformManifest(ctx, client, ref, platform, platform !== undefined)).bytes);
}

/**
 * The config blob of the manifest (of this machine's build, or --platform's, for an image index), as
 * stored: not parsed nor validated, so a config diginfractl would refuse can still be looked at.
 */
export async function runArtifactConfig(ctx: CliContext, refText: string, flags: RawFlags): Promise<void> {
  const platform = platformOrHost(flags.platform);
  await printRaw(ctx, refText, flags, async (client, ref) => {
    const manifest = await platformManifest(ctx, client, ref, platform, Boolean(flags.platform));
    const config = (manifest.json as { config?: Descriptor }).config;
    if (!config || typeof config.digest !== 'string' || typeof config.size !== 'number') {
      throw new DiginfraError('ARTIFACT_INVALID', `${formatReference(ref)} (manifest ${manifest.descriptor.digest}) has no config`);
    }
    return client.readBlob(ref, config);
  });
}

/**
 * The manifest `ref` points at; for an image index and a platform, that platform's entry. A
 * platform asked of a single manifest is said on stderr: that artifact has one build for all.
 */
async function platformManifest(ctx: CliContext, client: RegistryClient, ref: OciReference, platform: Platform | undefined, asked: boolean): Promise<FetchedManifest> {
  const top = await client.fetchManifest(ref);
  if (!platform) return top;
  if (!isIndexMediaType(top.descriptor.mediaType)) {
    if (asked) ctx.logger.warn(`${formatReference(ref)} is a single manifest, not an image index: it has no build per platform, so --platform ${formatPlatform(platform)} does not apply`);
    return top;
  }
  const { entry } = chooseFromIndex(top.json as unknown as ImageIndex, platform, formatReference(ref));
  return client.fetchManifest(withDigest(ref, entry.digest));
}
