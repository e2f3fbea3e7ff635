/**
 * Choosing one build from an image index by platform. Pure: it reads only the index's `manifests`
 * (OCI descriptors, each of which may carry a `platform`), so it needs no registry types.
 * https://github.com/opencontainers/image-spec/blob/main/image-index.md
 */
import { DiginfraError } from '../errors.js';
import { formatPlatform, samePlatform, type Platform } from './platform.js';

/** An image index entry, as far as choosing needs it. */
export interface PlatformEntry {
  platform?: Platform;
}

/** Every platform the entries offer, in index order. */
export function platformsOf(entries: readonly PlatformEntry[]): Platform[] {
  return entries.flatMap((e) => (e.platform ? [e.platform] : []));
}

/**
 * The first entry of `index` for `platform`, and every platform the index offers. When it has none for
 * `platform`, PLATFORM_NOT_FOUND lists what it has. `name` is the artifact, for the message.
 */
export function chooseFromIndex<E extends PlatformEntry>(
  index: { manifests?: readonly E[] },
  platform: Platform,
  name: string,
): { entry: E & { platform: Platform }; offered: Platform[] } {
  const entries = index.manifests ?? [];
  const offered = platformsOf(entries);
  const entry = entries.find((e): e is E & { platform: Platform } => Boolean(e.platform) && samePlatform(e.platform!, platform));
  if (!entry) {
    throw new DiginfraError('PLATFORM_NOT_FOUND', `${name} has no build for ${formatPlatform(platform)}; it has: ${offered.map(formatPlatform).join(', ') || 'no platforms'}`, {
      hint: 'pick one of those with --platform, or ask the publisher for a build for this platform',
    });
  }
  return { entry, offered };
}
