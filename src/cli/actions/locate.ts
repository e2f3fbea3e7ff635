/**
 * Where a reference as typed points: a short name through the configured indexes, else the registry
 * reference itself. Shared by the commands that show one artifact (`artifact info|manifest|config`).
 */
import { type LoadedConfig, indexCredentialsPath } from '../../config/index.js';
import type { IndexEntry, LoadedIndex } from '../../indexes/index.js';
import { parseArtifactRef, type OciReference } from '../../reference/index.js';
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
 * A locator for several references: the indexes are loaded once, on the first short name; for
 * `INDEX::name`, only that index. An index that cannot be loaded is skipped with a warning, as by
 * install and search. `type` restricts a short name to index entries of that type.
 */
export function refLocator(ctx: CliContext, loaded: LoadedConfig): (refText: string, type?: string) => Promise<LocatedRef> {
  const loads = new Map<string | undefined, Promise<LoadedIndex[]>>();
  return async (refText, type) => {
    const parsed = parseArtifactRef(refText);
    if (parsed.kind === 'name') {
      // Index code loads only for a short name: a registry reference (`repo pull`) does without it.
      const { commandLoadOptions, loadIndexes, resolveIndexedName } = await import('../../indexes/resolve-name.js');
      const only = parsed.name.index;
      const configured = loaded.config.indexes;
      // An index not configured: the lookup names the configured ones, none of which needs loading.
      if (only !== undefined && !configured.some((ix) => ix.name === only)) resolveIndexedName(parsed.name, configured.map((ix) => ({ name: ix.name, url: ix.url, entries: [] })));
      let indexes = loads.get(only);
      if (!indexes) {
        const opts = commandLoadOptions(() => ctx.logger, indexCredentialsPath(loaded.path));
        indexes = loadIndexes(loaded.config, undefined, only !== undefined ? { ...opts, only: [only] } : opts);
        loads.set(only, indexes);
      }
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
