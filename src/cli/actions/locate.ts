/**
 * Where a reference as typed points: a short name through the configured indexes, else the registry
 * reference itself. Shared by the commands that show one artifact (`artifact info|manifest|config`).
 */
import type { LoadedConfig } from '../../config/load.js';
import { indexCredentialsPath } from '../../config/paths.js';
import type { IndexEntry, LoadedIndex } from '../../indexes/types.js';
import { parseArtifactRef, type OciReference } from '../../reference/reference.js';
import type { CliContext } from '../run.js';

export interface LocatedRef {
  repo: OciReference;
  tag?: string;
  digest?: string;
  /** Set when an index resolved a short name. */
  entry?: IndexEntry;
  index?: string;
}

/**
 * A locator for several references: the indexes are loaded once, on the first short name. `type`
 * restricts a short name to index entries of that type.
 */
export function refLocator(ctx: CliContext, loaded: LoadedConfig): (refText: string, type?: string) => Promise<LocatedRef> {
  let indexes: Promise<LoadedIndex[]> | undefined;
  return async (refText, type) => {
    const parsed = parseArtifactRef(refText);
    if (parsed.kind === 'name') {
      // Index code loads only for a short name: a registry reference (`repo pull`) does without it.
      const { loadIndexes, resolveIndexedName } = await import('../../indexes/resolve-name.js');
      indexes ??= loadIndexes(loaded.config, undefined, { credentialsPath: indexCredentialsPath(loaded.path) });
      const found = resolveIndexedName(parsed.name, await indexes, type);
      if (found.shadowed.length) ctx.logger.warn(`"${parsed.name.name}" is also in: ${found.shadowed.join(', ')}; using index "${found.index}"`);
      return {
        repo: { registry: found.ref.registry, repository: found.ref.repository },
        ...(found.ref.tag !== undefined && { tag: found.ref.tag }),
        entry: found.entry,
        index: found.index,
      };
    }
    return {
      repo: { registry: parsed.ref.registry, repository: parsed.ref.repository },
      ...(parsed.ref.tag !== undefined && { tag: parsed.ref.tag }),
      ...(parsed.ref.digest !== undefined && { digest: parsed.ref.digest }),
    };
  };
}
