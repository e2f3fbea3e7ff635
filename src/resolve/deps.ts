/**
 * Dependency resolution. The graph walk is pure logic; the only I/O (listing a dependency's versions,
 * reading the chosen version's config) goes through a `DependencySource` the caller supplies, so the
 * rules here are tested with an in-memory source.
 *
 * Rules (docs/install.md):
 * - Artifacts are keyed by their config `name`. What the user asked for is fixed: a dependency on it
 *   must be satisfied by the version asked for, or the install fails.
 * - A dependency `{name, version}` accepts any version of the same major that is not older
 *   (`0.7.0` accepts 0.9.1, not 1.0.0). When several artifacts need the same one, the newest version
 *   that satisfies all of them is chosen; when none does, DEPENDENCY_CONFLICT names every requirer,
 *   what it asked for, and why no version fits.
 * - `alternatives`: a dependency is satisfied by the first of [name, ...alternatives] already in the
 *   plan; when none is, the first that the registry has in a satisfying version is added. When the
 *   one chosen conflicts with what other artifacts need, the next alternative is tried before the
 *   install fails.
 * - The same artifact asked for twice with different versions: the highest is kept, with a warning.
 */
import semver from 'semver';
import { DiginfraError, isDiginfraError } from '../errors.js';
import type { Dependency } from './dependency.js';
import { compareVersions, compatibleLine, dependencyRange, highest, highestSatisfyingAll, lineOf, satisfiesDependency, versionTags } from './versions.js';

export interface DepNode {
  /** Config name: the key of the graph. */
  name: string;
  version: string;
  type: string;
  dependencies?: readonly Dependency[];
}

export interface DependencySource<N extends DepNode> {
  /** Tags of the repository where `name` is found from `requirer` (may throw NOT_FOUND). */
  versions(name: string, requirer: N): Promise<string[]>;
  /** The artifact `name` at tag `version`, found from `requirer`. */
  load(name: string, version: string, requirer: N): Promise<N>;
}

export interface ResolvedNode<N extends DepNode> {
  node: N;
  /** Asked for by the user (a root), as opposed to pulled in as a dependency. */
  requested: boolean;
  /** Labels (`name version`) of the artifacts that depend on this one. */
  requiredBy: string[];
}

export interface Constraint {
  /** Who asked: `name version` of the requirer, or `the command line`. */
  by: string;
  /** What was asked: the artifact name and the lowest acceptable version. */
  name: string;
  version: string;
  /** Asked for exactly (a version named on the command line), not as a dependency. */
  exact?: boolean;
}

export function labelOf(n: { name: string; version: string }): string {
  return `${n.name} ${n.version}`;
}

/**
 * The same artifact (by name) asked for more than once: keeps the highest version (the first one
 * given on a tie) and says what was dropped.
 */
export function dedupeRoots<N extends { name: string; version: string }>(roots: readonly N[]): { roots: N[]; warnings: string[]; dropped: N[] } {
  const byName = new Map<string, N>();
  const warnings: string[] = [];
  const dropped: N[] = [];
  for (const r of roots) {
    const seen = byName.get(r.name);
    if (!seen) {
      byName.set(r.name, r);
      continue;
    }
    if (seen.version === r.version) {
      dropped.push(r);
      continue;
    }
    const keep = compareVersions(r.version, seen.version) > 0 ? r : seen;
    const drop = keep === r ? seen : r;
    warnings.push(`${r.name} was asked for twice (${seen.version} and ${r.version}); installing ${keep.version}`);
    byName.set(r.name, keep);
    dropped.push(drop);
  }
  return { roots: [...byName.values()], warnings, dropped };
}

/** The DEPENDENCY_CONFLICT error, naming every requirer and what it asked for. */
export function conflictError(name: string, constraints: readonly Constraint[], detail?: string): DiginfraError {
  const asks = constraints.map((c) => (c.exact ? `${c.by} asks for ${c.name} ${c.version}` : `${c.by} needs ${c.name} ${dependencyRange(c.version)}`));
  return new DiginfraError(
    'DEPENDENCY_CONFLICT',
    `no version of ${name} satisfies every artifact that needs it: ${asks.join('; ')}${detail ? ` (${detail})` : ''}`,
    { hint: 'install versions of these artifacts that agree on one major version of the dependency; nothing was written' },
  );
}

/** Why none of `tags` satisfies every one of `wanted` (all in one major line): said exactly, for the conflict. */
export function unsatisfiedDetail(tags: readonly string[], wanted: readonly string[]): string {
  const have = versionTags(tags).sort(compareVersions);
  if (have.length === 0) return 'the repository has no version tags';
  const line = lineOf(wanted[0]!);
  const floor = highest(wanted.filter((w) => semver.valid(w) !== null))!;
  const newest = highest(have.filter((t) => lineOf(t) === line && semver.prerelease(t) === null));
  const why =
    newest === undefined
      ? `no ${line} version is published`
      : compareVersions(newest, floor) < 0
        ? `the newest ${line} version published is ${newest}, older than ${floor}`
        : 'no published version satisfies all of them';
  return `${why}; available: ${have.join(', ')}`;
}

interface Edge {
  from: string;
  dep: Dependency;
  /** Identifies the dependency across rounds: requirer name and first candidate name. */
  key: string;
}

interface EdgeState {
  edge: Edge;
  target: { name: string; version: string } | undefined;
  /** Position of `target` among [dep, ...alternatives]; -1 when there is none. */
  at: number;
}

const MAX_ROUNDS = 200;

/**
 * Resolves the dependencies of `roots` (already deduplicated), returning roots first (in order), then
 * dependencies in the order they were found.
 */
export async function resolveDependencies<N extends DepNode>(roots: readonly N[], source: DependencySource<N>): Promise<ResolvedNode<N>[]> {
  const rootNames = new Set(roots.map((r) => r.name));
  const selected = new Map<string, N>();
  for (const r of roots) selected.set(r.name, r);
  /** Per dependency (Edge.key): how many of its candidates were given up after a conflict. */
  const givenUp = new Map<string, number>();

  /** Edges of every selected node reachable from the roots, and what each points at. */
  const edges = (): EdgeState[] => {
    const out: EdgeState[] = [];
    const seen = new Set<string>();
    const queue = [...roots.map((r) => r.name)];
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (seen.has(name)) continue;
      seen.add(name);
      const node = selected.get(name);
      if (!node) continue;
      for (const dep of node.dependencies ?? []) {
        const key = `${name}\u0000${dep.name}`;
        const candidates = [dep, ...(dep.alternatives ?? [])];
        const from = givenUp.get(key) ?? 0;
        const at = candidates.findIndex((c, i) => i >= from && selected.has(c.name));
        const target = at < 0 ? undefined : candidates[at];
        out.push({ edge: { from: name, dep, key }, target, at });
        if (target) queue.push(target.name);
      }
    }
    return out;
  };

  const constraintsOn = (name: string, all: readonly EdgeState[]): Constraint[] =>
    all
      .filter((e) => e.target?.name === name)
      .map((e) => ({ by: labelOf(selected.get(e.edge.from)!), name, version: e.target!.version }));

  /** Newest version of `name` satisfying `constraints`, found from `requirer`; throws a conflict. */
  const pick = async (name: string, constraints: Constraint[], requirer: N): Promise<string> => {
    const wanted = constraints.map((c) => c.version);
    if (!compatibleLine(wanted)) {
      throw conflictError(name, constraints, `they ask for different major versions: ${[...new Set(wanted.map(lineOf))].join(' and ')}`);
    }
    const tags = await source.versions(name, requirer);
    const best = highestSatisfyingAll(tags, wanted);
    if (best === undefined) throw conflictError(name, constraints, unsatisfiedDetail(tags, wanted));
    return best;
  };

  /**
   * A conflict on `name`: a requirer whose dependency has alternatives left moves to the next one
   * (first those the current version does not satisfy). False when none can.
   */
  const tryNextAlternative = (name: string, all: readonly EdgeState[]): boolean => {
    const current = selected.get(name)!;
    const movable = all.filter((e) => e.target?.name === name && e.at + 1 < 1 + (e.edge.dep.alternatives?.length ?? 0));
    const edge = movable.find((e) => !satisfiesDependency(current.version, e.target!.version)) ?? movable[0];
    if (!edge) return false;
    givenUp.set(edge.edge.key, edge.at + 1);
    return true;
  };

  for (let round = 0; ; round++) {
    if (round >= MAX_ROUNDS) throw new DiginfraError('DEPENDENCY_CONFLICT', 'dependency resolution does not settle (versions keep changing each other)');
    const all = edges();
    // What no reachable dependency points at any more (an alternative given up) leaves the plan.
    for (const name of [...selected.keys()]) if (!rootNames.has(name) && !all.some((e) => e.target?.name === name)) selected.delete(name);

    // 1. A selected artifact that does not satisfy everyone who needs it.
    const broken = all.find((e) => e.target && !constraintsOn(e.target.name, all).every((c) => satisfiesDependency(selected.get(c.name)!.version, c.version)));
    if (broken) {
      const name = broken.target!.name;
      const constraints = constraintsOn(name, all);
      const current = selected.get(name)!;
      const requirer = selected.get(broken.edge.from)!;
      try {
        if (rootNames.has(name)) {
          throw conflictError(name, [{ by: 'the command line', name, version: current.version, exact: true }, ...constraints], `${name} ${current.version} was asked for explicitly`);
        }
        selected.set(name, await source.load(name, await pick(name, constraints, requirer), requirer));
      } catch (err) {
        if (!isDiginfraError(err, 'DEPENDENCY_CONFLICT') || !tryNextAlternative(name, all)) throw err;
      }
      continue;
    }

    // 2. A dependency none of whose remaining candidates is in the plan yet.
    const open = all.find((e) => e.target === undefined);
    if (open) {
      const requirer = selected.get(open.edge.from)!;
      const candidates = [open.edge.dep, ...(open.edge.dep.alternatives ?? [])].slice(givenUp.get(open.edge.key) ?? 0);
      let firstError: unknown;
      let added = false;
      for (const c of candidates) {
        try {
          const constraints = [{ by: labelOf(requirer), name: c.name, version: c.version }];
          const version = await pick(c.name, constraints, requirer);
          const node = await source.load(c.name, version, requirer);
          if (node.name !== c.name) {
            throw new DiginfraError('ARTIFACT_INVALID', `${labelOf(requirer)} depends on ${c.name}, but the artifact found for it is named ${node.name}`);
          }
          selected.set(c.name, node);
          added = true;
          break;
        } catch (err) {
          if (!isDiginfraError(err, 'NOT_FOUND') && !isDiginfraError(err, 'ARTIFACT_NOT_FOUND') && !isDiginfraError(err, 'DEPENDENCY_CONFLICT')) throw err;
          firstError ??= err;
        }
      }
      if (!added) throw firstError;
      continue;
    }

    // Settled: roots, then reachable dependencies in discovery order.
    const result: ResolvedNode<N>[] = roots.map((r) => ({ node: selected.get(r.name)!, requested: true, requiredBy: requirersOf(r.name, all, selected) }));
    const order: string[] = [];
    for (const e of all) if (e.target && !rootNames.has(e.target.name) && !order.includes(e.target.name)) order.push(e.target.name);
    for (const name of order) result.push({ node: selected.get(name)!, requested: false, requiredBy: requirersOf(name, all, selected) });
    return result;
  }
}

function requirersOf<N extends DepNode>(name: string, all: readonly EdgeState[], selected: Map<string, N>): string[] {
  const by: string[] = [];
  for (const e of all) {
    if (e.target?.name !== name) continue;
    const label = labelOf(selected.get(e.edge.from)!);
    if (!by.includes(label)) by.push(label);
  }
  return by;
}
