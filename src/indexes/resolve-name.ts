/**
 * Turning a short name (`k8saudit`, `k8saudit:0.7`, `corp::k8saudit`) into a registry reference, for
 * the installer. The first index in configured order wins; others that also hold the name are
 * returned as `shadowed` so the caller can warn. `INDEX::name` looks in that index only. A name with
 * a `/` never gets here: it is a registry reference (see reference.ts), and nothing is guessed.
 */
import { DiginfraError } from '../errors.js';
import type { IndexedName, OciReference } from '../reference/reference.js';
import { closest } from '../config/suggest.js';
import type { IndexEntry, LoadedIndex } from './types.js';

export { loadIndexes, type LoadIndexesOptions } from './load.js';
export type { IndexEntry, LoadedIndex } from './types.js';

export interface ResolvedName {
  entry: IndexEntry;
  /** Name of the index the entry came from. */
  index: string;
  /** registry/repository from the entry, with the tag the user gave (none: the caller's default). */
  ref: OciReference;
  /** Later indexes that also hold this name and lost to `index`. */
  shadowed: string[];
}

function hintFor(name: string, indexes: readonly LoadedIndex[]): string {
  const near = closest(name, indexes.flatMap((ix) => ix.entries.map((e) => e.name)));
  return `${near !== undefined ? `did you mean "${near}"? ` : ''}run "diginfractl artifact search ${name}" to look for it, or "diginfractl index update" to refresh the indexes`;
}

/** `type`: only entries of this type count (a name that two types share resolves to the one asked for). */
export function resolveIndexedName(name: IndexedName, indexes: readonly LoadedIndex[], type?: string): ResolvedName {
  const pool = name.index !== undefined ? indexes.filter((ix) => ix.name === name.index) : indexes;
  if (name.index !== undefined && pool.length === 0) {
    throw new DiginfraError('INDEX_NOT_FOUND', `index "${name.index}" (in "${name.index}::${name.name}") is not configured${indexes.length > 0 ? ` (configured: ${indexes.map((i) => i.name).join(', ')})` : ''}`, {
      hint: 'run "diginfractl index list", or "diginfractl index add NAME URL"',
    });
  }
  const found: { index: string; entry: IndexEntry }[] = [];
  for (const ix of pool) {
    const entry = ix.entries.find((e) => e.name === name.name && (type === undefined || e.type === type));
    if (entry) found.push({ index: ix.name, entry });
  }
  const first = found[0];
  if (!first) {
    const where = name.index !== undefined ? `index "${name.index}"` : indexes.length === 0 ? 'any index (none is configured)' : `any index (searched ${indexes.map((i) => i.name).join(', ')})`;
    throw new DiginfraError('ARTIFACT_NOT_FOUND', `no ${type ?? 'artifact'} named "${name.name}" in ${where}`, { hint: hintFor(name.name, pool.length > 0 ? pool : indexes) });
  }
  const ref: OciReference = {
    registry: first.entry.registry,
    repository: first.entry.repository,
    ...(name.tag !== undefined && { tag: name.tag }),
  };
  return { entry: first.entry, index: first.index, ref, shadowed: found.slice(1).map((f) => f.index) };
}
