/**
 * Are a new version's dependencies installed? The engine refuses rules that need a plugin it has not
 * loaded, and keeps its old rules without a word; so a followed rules file whose new version needs a
 * plugin (or a plugin version) this node does not have is refused before the swap, and looked at
 * again once what is installed changes (docs/follow.md).
 *
 * What is installed comes from `artifact install`'s lock file (entries whose files are still in
 * place) and from the refs this agent follows itself. The version rule is the one `artifact install`
 * resolves with (src/resolve/versions.ts): same major, not older: `k8saudit 0.7.0` accepts 0.x >= 0.7.0,
 * `1.2.0` accepts 1.x >= 1.2.0.
 */
import type { Dependency, VersionedName } from '../artifact/index.js';
import { findRequested, readLockfile } from '../install/index.js';
import { dependencyRange, satisfiesDependency } from '../resolve/index.js';
import { filesPresent, type InstalledVersion } from './state.js';

export interface InstalledArtifact {
  name: string;
  version: string;
  type: string;
}

export interface InstalledView {
  installed: InstalledArtifact[];
  /**
   * A lock file was found. Without one, a dependency no followed ref provides may still have been
   * installed by hand: nothing can be said, and the update goes ahead with a warning.
   */
  known: boolean;
  /** The same for the same installed set; a rejection remembers it, so a change earns another look. */
  signature: string;
}

/** The choices that satisfy `dep`: itself, then its alternatives. */
function choices(dep: Dependency): VersionedName[] {
  return [{ name: dep.name, version: dep.version }, ...(dep.alternatives ?? [])];
}

/** The dependencies nothing installed satisfies (in their order). */
export function unmetDependencies(deps: readonly Dependency[], installed: readonly InstalledArtifact[]): Dependency[] {
  return deps.filter((dep) => !choices(dep).some((c) => installed.some((i) => i.name === c.name && satisfiesDependency(i.version, c.version))));
}

/** `k8saudit >=0.7.0 <1.0.0 or k8saudit-eks >=0.2.0 <1.0.0 (installed: k8saudit 0.6.1)`, for a log line and the rejection. */
export function describeUnmet(unmet: readonly Dependency[], installed: readonly InstalledArtifact[]): string {
  return unmet
    .map((dep) => {
      const wanted = choices(dep).map((c) => `${c.name} ${dependencyRange(c.version)}`).join(' or ');
      const names = new Set(choices(dep).map((c) => c.name));
      const have = installed.filter((i) => names.has(i.name)).map((i) => `${i.name} ${i.version}`);
      return `${wanted} (installed: ${have.length ? have.join(', ') : 'none'})`;
    })
    .join('; ');
}

export function signatureOf(installed: readonly InstalledArtifact[]): string {
  return [...new Set(installed.map((i) => `${i.type}/${i.name}@${i.version}`))].sort().join(',');
}

/**
 * What is installed on this node: the entries of the lock files whose files are still in place,
 * plus the followed refs' current versions whose files are in place.
 */
export async function installedArtifacts(lockfiles: readonly string[], followed: readonly InstalledVersion[]): Promise<InstalledView> {
  const installed: InstalledArtifact[] = [];
  let known = false;
  for (const path of lockfiles) {
    const lock = await readLockfile(path);
    if (!lock) continue;
    known = true;
    for (const e of lock.artifacts) {
      if (await filesPresent(e.dir, e.files)) installed.push({ name: e.name, version: e.version, type: e.type });
    }
  }
  for (const v of followed) {
    if (await filesPresent(v.dir, v.files)) installed.push({ name: v.name, version: v.version, type: v.type });
  }
  return { installed, known, signature: signatureOf(installed) };
}

/**
 * Whether `artifact install` placed `ref` (normalized, as its lock file records what was asked for)
 * and its files are still there: an init container's install, which the follower has not recorded.
 */
export async function placedByInstall(lockfiles: readonly string[], ref: string): Promise<boolean> {
  for (const path of lockfiles) {
    // A lock file that cannot be read says nothing here (the dependency check reports it).
    const lock = await readLockfile(path).catch(() => undefined);
    const entry = lock && findRequested(lock, ref);
    if (entry && (await filesPresent(entry.dir, entry.files))) return true;
  }
  return false;
}
