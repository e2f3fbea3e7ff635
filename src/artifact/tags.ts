/**
 * Which tag a reference means: the registry's tag list read through the version rules of
 * src/resolve/versions.ts. Shared by install, follow, pull and info; small, so `repo pull` loads
 * nothing of install's planning.
 */
import semver from 'semver';
import { DiginfraError, isDiginfraError } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import { repositoryKey, highest, isFloatingTag, resolveFloatingTag, versionTags } from '../resolve/index.js';

/**
 * The tag to fetch: a fixed tag as is; a floating tag (`1`, `1.2`) as the highest release of its line
 * among the repository's tags (the tag itself when the repository has none); no tag: `latest`, else the
 * highest version tag.
 */
export async function selectTag(client: RegistryClient, repo: OciReference, tag: string | undefined): Promise<string> {
  if (tag !== undefined && !isFloatingTag(tag)) return tag;
  let tags: string[];
  try {
    tags = await client.listTags({ registry: repo.registry, repository: repo.repository });
  } catch (err) {
    // A registry that does not list tags (or a repository that does not exist: the manifest fetch
    // then says so): fall back to the literal tag.
    if (isDiginfraError(err) && err.code !== 'NETWORK') return tag ?? 'latest';
    throw err;
  }
  if (tag !== undefined) return resolveFloatingTag(tag, tags) ?? tag;
  if (tags.includes('latest')) return 'latest';
  const versions = versionTags(tags);
  const best = highest(versions.filter((v) => semver.prerelease(v) === null)) ?? highest(versions);
  if (best === undefined) {
    throw new DiginfraError('NOT_FOUND', `${repositoryKey(repo)} has no "latest" tag and no version tags`, { hint: 'give a tag or digest explicitly' });
  }
  return best;
}
