/**
 * `repo push -t TAG` (falcoctl's `--tag`, repeatable): more tags for the artifact just pushed. Each is a
 * PUT of the same manifest bytes under another tag, after the version tag (and any floating tags)
 * moved, so every tag names the same digest.
 */
import { parseOciReference, withTag, type OciReference } from '../../reference/index.js';
import type { RegistryClient } from '../../registry/index.js';

/** Checks the tags before anything is pushed (a bad one fails with REF_INVALID); returns them without repeats. */
export function checkExtraTags(ref: OciReference, tags: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const tag of tags ?? []) {
    parseOciReference(`${ref.registry}/${ref.repository}:${tag}`);
    if (!out.includes(tag)) out.push(tag);
  }
  return out;
}

/** Tags `pushed` (a digest) with each of `tags` not already in `done`; returns the tags it added. */
export async function pushExtraTags(client: RegistryClient, pushed: OciReference & { digest: string }, tags: readonly string[], done: readonly string[]): Promise<string[]> {
  const todo = tags.filter((t) => !done.includes(t));
  if (todo.length === 0) return [];
  const manifest = await client.fetchManifest({ registry: pushed.registry, repository: pushed.repository, digest: pushed.digest });
  for (const tag of todo) await client.pushManifest(withTag(pushed, tag), manifest.bytes, manifest.descriptor.mediaType);
  return todo;
}
