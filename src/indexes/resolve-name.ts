/**
 * Turning a short name (`k8saudit`, `k8saudit:0.7`, `corp::k8saudit`) into a registry reference, for
 * the installer. The first index in configured order wins; others that also hold the name are
 * returned as `shadowed` so the caller can warn. `INDEX::name` looks in that index only. A name with
 * a `/` never gets here: it is a registry reference (see reference.ts), and nothing is guessed.
 */
import { DiginfraError } from '../errors.js';
import type { IndexedName, OciReference } from '../reference/index.js';
import { closest } from '../config/index.js';
import type { IndexEntry, LoadedIndex } from './types.js';

export { commandLoadOptions, loadIndexes, type LoadIndexesOptions } from './load.js';
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
  const skipped = indexes.filter((ix) => ix.skipped);
  const update = skipped.length > 0 ? `"diginfractl index update ${skipped.map((ix) => ix.name).join(' ')}" to try the skipped ${skipped.length === 1 ? 'index' : 'indexes'} again` : '"diginfractl index update" to refresh the indexes';
  return `${near !== undefined ? `did you mean "${near}"? ` : ''}run "diginfractl artifact search ${name}" to look for it, or ${update}`;
}

/** `index "corp" was skipped: <why>` for each skipped index of `pool`, `; ` between them. */
function skippedText(pool: readonly LoadedIndex[]): string {
  return pool
    .filter((ix) => ix.skipped)
    .map((ix) => `index "${ix.name}" was skipped: ${ix.skipped!.message}`)
    .join('; ');
}

/** Where a name was looked for, for the not-found message: the indexes searched and those skipped (and why). */
function whereLooked(name: IndexedName, pool: readonly LoadedIndex[]): string {
  if (name.index !== undefined) return `index "${name.index}"`;
  if (pool.length === 0) return 'any index (none is configured)';
  const searched = pool.filter((ix) => !ix.skipped).map((ix) => ix.name);
  const skipped = skippedText(pool);
  if (searched.length === 0) return `any index: ${pool.length === 1 ? `the only one configured, "${pool[0]!.name}", was skipped: ${pool[0]!.skipped!.message}` : `every configured index was skipped (${skipped})`}`;
  return `any index (searched ${searched.join(', ')}${skipped ? `; ${skipped}` : ''})`;
}

/**
 * `type`: only entries of this type count (a name that two types share resolves to the one asked for).
 * Indexes marked `skipped` (load.ts, `keepSkipped`) hold nothing; they are named in the error when no
 * other index has the name, and `INDEX::name` of a skipped index fails with the reason it was skipped.
 */
export function resolveIndexedName(name: IndexedName, indexes: readonly LoadedIndex[], type?: string): ResolvedName {
  const pool = name.index !== undefined ? indexes.filter((ix) => ix.name === name.index) : indexes;
  if (name.index !== undefined && pool.length === 0) {
    throw new DiginfraError('INDEX_NOT_FOUND', `index "${name.index}" (in "${name.index}::${name.name}") is not configured${indexes.length > 0 ? ` (configured: ${indexes.map((i) => i.name).join(', ')})` : ''}`, {
      hint: 'run "diginfractl index list", or "diginfractl index add NAME URL"',
    });
  }
  const only = pool[0];
  if (name.index !== undefined && only?.skipped) {
    throw new DiginfraError(only.skipped.code, `cannot look up "${name.index}::${name.name}": index "${name.index}" was skipped: ${only.skipped.message}`, {
      hint: `run "diginfractl index update ${name.index}" to try it again now`,
    });
  }
  const found: { index: string; entry: IndexEntry }[] = [];
  for (const ix of pool) {
    const entry = ix.entries.find((e) => e.name === name.name && (type === undefined || e.type === type));
    if (entry) found.push({ index: ix.name, entry });
  }
  const first = found[0];
  if (!first) {
    throw new DiginfraError('ARTIFACT_NOT_FOUND', `no ${type ?? 'artifact'} named "${name.name}" in ${whereLooked(name, pool)}`, { hint: hintFor(name.name, pool.length > 0 ? pool : indexes) });
  }
  const ref: OciReference = {
    registry: first.entry.registry,
    repository: first.entry.repository,
    ...(name.tag !== undefined && { tag: name.tag }),
  };
  return { entry: first.entry, index: first.index, ref, shadowed: found.slice(1).map((f) => f.index) };
}
