/**
 * Where a reference as typed points: a short name through the configured indexes, else the registry
 * reference itself. Shared by the commands that show one artifact (`artifact info|manifest|config`).
 */
import type { LoadedConfig } from '../../config/load.js';
import { indexCredentialsPath } from '../../config/paths.js';
import { loadIndexes } from '../../index/load.js';
import { resolveIndexedName } from '../../index/resolve-name.js';
import type { IndexEntry } from '../../index/types.js';
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

export async function locateRef(ctx: CliContext, loaded: LoadedConfig, refText: string): Promise<LocatedRef> {
  const parsed = parseArtifactRef(refText);
  if (parsed.kind === 'name') {
    const indexes = await loadIndexes(loaded.config, undefined, { credentialsPath: indexCredentialsPath(loaded.path) });
    const found = resolveIndexedName(parsed.name, indexes);
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
}
