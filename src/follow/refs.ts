/**
 * A followed ref: its normalized form (the key of its state and its metrics), and the digest it
 * points at now, found with as few requests as the file comment of follower.ts lists.
 */
import { DiginfraError, isDiginfraError } from '../errors.js';
import type { LoadedIndex } from '../indexes/index.js';
import { formatArtifactRef, parseArtifactRef, type OciReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import { isFloatingTag } from '../resolve/index.js';

// Loaded on first use: a ref by registry address with its tag in place needs neither.
const lazy = {
  plan: () => import('../install/plan.js'),
  names: () => import('../indexes/resolve-name.js'),
};

/** Normalized, deduplicated refs (`ghcr.io/a/b` and `ghcr.io/a/b:latest` are one ref). Throws REF_INVALID. */
export function normalizeRefs(refs: readonly string[]): string[] {
  return [...new Set(refs.map((r) => normalizeRef(r)))];
}

/** `ghcr.io/a/b` -> `ghcr.io/a/b:latest`: the key of a ref in the state dir and in metrics labels. */
export function normalizeRef(text: string): string {
  return formatArtifactRef(parseArtifactRef(text));
}

/** registry/repository plus the tag or digest a ref asks for. */
export interface Target {
  repo: OciReference;
  tag?: string;
  digest?: string;
}

/** What `ref` asks for; a bare name (`k8saudit-rules:1`) is looked up in the indexes. */
export async function resolveTarget(ref: string, indexes: (() => Promise<readonly LoadedIndex[]>) | undefined): Promise<Target> {
  const parsed = parseArtifactRef(ref);
  if (parsed.kind === 'oci') {
    const r = parsed.ref;
    return { repo: { registry: r.registry, repository: r.repository }, ...(r.tag !== undefined && { tag: r.tag }), ...(r.digest !== undefined && { digest: r.digest }) };
  }
  if (!indexes) throw new DiginfraError('ARTIFACT_NOT_FOUND', `"${ref}" is a name, and no index is configured to look it up`);
  const { resolveIndexedName } = await lazy.names();
  const found = resolveIndexedName(parsed.name, await indexes());
  return { repo: { registry: found.ref.registry, repository: found.ref.repository }, ...(found.ref.tag !== undefined && { tag: found.ref.tag }) };
}

/** The digest the target points at now, and the tag that was asked (the requests in follower.ts's comment). */
export async function currentDigest(client: RegistryClient, target: Target): Promise<{ digest: string; tag?: string }> {
  if (target.digest !== undefined) return { digest: target.digest };
  // No tag means `latest`; a floating tag (`1`, `1.2`) is kept by `repo push --add-floating-tags`
  // on the newest release of its line. Either is one HEAD; only a repository without that tag costs
  // the tag list (the highest matching version) and a HEAD of the tag chosen.
  const asked = target.tag ?? 'latest';
  if (target.tag === undefined || isFloatingTag(asked)) {
    try {
      const d = await client.resolve({ ...target.repo, tag: asked });
      return { digest: d.digest, tag: asked };
    } catch (err) {
      if (!isDiginfraError(err, 'NOT_FOUND')) throw err;
      const tag = await (await lazy.plan()).selectTag(client, target.repo, target.tag);
      if (tag === asked) throw err; // the tag list has nothing better: that 404 is the answer
      const d = await client.resolve({ ...target.repo, tag });
      return { digest: d.digest, tag };
    }
  }
  const d = await client.resolve({ ...target.repo, tag: asked });
  return { digest: d.digest, tag: asked };
}
