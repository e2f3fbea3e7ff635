/**
 * Which signature policies apply to an artifact (docs/signatures.md, "Which policy applies"). Pure:
 * the indexes come in already loaded.
 *
 *  1. Every entry of every index whose registry and repository are the artifact's: a name the user
 *     typed resolved to such an entry, and a full reference to an indexed repository finds them all.
 *     Each one's policy must hold.
 *  2. When no entry describes the repository (a dependency found beside its requirer, a copy in a
 *     private registry, a reference typed by hand): the entry the artifact's config `name` means, as
 *     that name would resolve (the first index in configured order holding it, of the artifact's type).
 *  3. When no index gives a policy: the configured keys (`registry.cosignKeys`, `--verify-key`).
 */
import { entriesForRepository, keyFilesPolicy, policyOf, type PolicyEntry, type SignaturePolicy } from './policy.js';

/** A policy and where it comes from, in words for messages: `index "falcosecurity", entry "cloudtrail"`. */
export interface AppliedPolicy {
  readonly policy: SignaturePolicy;
  readonly from: string;
}

/** What identifies an artifact for policy lookup. */
export interface PolicySubject {
  readonly registry: string;
  readonly repository: string;
  /** The artifact's config `name` and type, when its config has been read. */
  readonly name?: string;
  readonly type?: string;
}

/** The indexes as policy lookup needs them. */
export interface PolicyIndex {
  readonly name: string;
  readonly entries: readonly PolicyEntry[];
}

/** Key files and the setting they come from (`registry.cosignKeys`, `--verify-key`). */
export interface KeyFiles {
  readonly paths: readonly string[];
  readonly from: string;
}

function fromEntry(index: string, entry: PolicyEntry): AppliedPolicy | undefined {
  const policy = policyOf(entry, index);
  return policy === undefined ? undefined : { policy, from: `index "${index}", entry "${entry.name}"` };
}

/** The policies that apply to `subject`, each of which must hold; empty when none does. */
export function policiesFor(subject: PolicySubject, indexes: readonly PolicyIndex[], keys?: KeyFiles): AppliedPolicy[] {
  const byRepository = indexes.flatMap((ix) => entriesForRepository(ix.entries, subject.registry, subject.repository).map((entry) => ({ index: ix.name, entry })));
  const applied: AppliedPolicy[] = [];
  if (byRepository.length > 0) {
    for (const { index, entry } of byRepository) {
      const p = fromEntry(index, entry);
      if (p !== undefined) applied.push(p);
    }
  } else if (subject.name !== undefined) {
    for (const ix of indexes) {
      const entry = ix.entries.find((e) => e.name === subject.name && (subject.type === undefined || e.type === subject.type));
      if (entry === undefined) continue;
      const p = fromEntry(ix.name, entry);
      if (p !== undefined) applied.push({ ...p, from: `${p.from}, by the artifact's name` });
      break;
    }
  }
  if (applied.length === 0 && keys !== undefined && keys.paths.length > 0) applied.push({ policy: keyFilesPolicy(keys.paths), from: keys.from });
  return applied;
}
