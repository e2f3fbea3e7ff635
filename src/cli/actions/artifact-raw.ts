/**
 * `artifact manifest REF` and `artifact config REF`: the documents themselves, byte for byte as the
 * registry stores them (each checked against its digest), for scripts and for a look at what `info`
 * summarizes. `artifact manifest REF | sha256sum` gives the digest the reference points at.
 */
import { hostPlatform, parsePlatform } from '../../artifact/format.js';
import { platformEntry, resolveArtifact } from '../../artifact/pull.js';
import { loadConfig } from '../../config/load.js';
import { selectTag } from '../../artifact/tags.js';
import { formatReference, withDigest, type OciReference } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { createRegistryClient } from '../../registry/factory.js';
import { isIndexMediaType, type ImageIndex } from '../../registry/media-types.js';
import type { CliContext } from '../run.js';
import { registryFlags, type RegistryFlagOptions } from '../session.js';
import { locateRef } from './locate.js';

export interface RawFlags extends RegistryFlagOptions {
  platform?: string;
}

/** Runs `fetch` with a client and the reference pinned to a tag (floating tags resolved) or digest; prints its bytes. */
async function printRaw(ctx: CliContext, refText: string, flags: RawFlags, fetch: (client: RegistryClient, ref: OciReference) => Promise<Buffer>): Promise<void> {
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const { repo, tag, digest } = await locateRef(ctx, loaded, refText);
  const client = createRegistryClient(loaded.config.registry, registryFlags(flags));
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
  const platform = flags.platform !== undefined ? parsePlatform(flags.platform) : undefined;
  await printRaw(ctx, refText, flags, async (client, ref) => {
    const top = await client.fetchManifest(ref);
    if (!platform || !isIndexMediaType(top.descriptor.mediaType)) return top.bytes;
    const entry = platformEntry(top.json as unknown as ImageIndex, platform, formatReference(ref));
    return (await client.fetchManifest(withDigest(ref, entry.digest))).bytes;
  });
}

/** The artifact's config (name, version, dependencies, requirements); of this machine's build, or --platform's, for an image index. */
export async function runArtifactConfig(ctx: CliContext, refText: string, flags: RawFlags): Promise<void> {
  const platform = flags.platform !== undefined ? parsePlatform(flags.platform) : hostPlatform();
  await printRaw(ctx, refText, flags, async (client, ref) => {
    const artifact = await resolveArtifact(client, ref, platform);
    return client.readBlob(ref, artifact.manifest.config);
  });
}
