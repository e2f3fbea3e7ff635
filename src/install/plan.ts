/**
 * Planning an install: every reference resolved to a pinned digest for this platform, dependencies
 * resolved, types and requirements checked. Nothing is written while planning, so any refusal
 * (conflict, type, requirement, missing platform) leaves the directories untouched.
 */
import { DiginfraError, isDiginfraError, messageOf } from '../errors.js';
import { PLUGIN, RULESFILE, samePlatform, type Dependency, resolveArtifact, type ResolvedArtifact, selectTag } from '../artifact/index.js';
import { resolveIndexedName, type LoadedIndex } from '../indexes/index.js';
import { formatArtifactRef, formatReference, parseArtifactRef, type ArtifactRef, type OciReference } from '../reference/index.js';
import { formatPlatform, type Platform, type RegistryClient } from '../registry/index.js';
import { dedupeRoots, labelOf, resolveDependencies, type DependencySource, repositoryKey, siblingRepository, checkAllowedTypes, checkRequirements, filterByType } from '../resolve/index.js';
import { findRequested, lockClosure, type LockEntry, type Lockfile } from './lockfile.js';
import { isLayoutReference, layoutReference, LayoutArtifacts } from './oci-source.js';

/** What resolving needs: a registry client, the platform, and the indexes (loaded on first use). */
export interface ResolveSession {
  client: RegistryClient;
  platform: Platform;
  indexes: () => Promise<readonly LoadedIndex[]>;
  warn?: (message: string) => void;
  debug?: (message: string) => void;
}

/** One reference resolved to exactly one artifact. */
export interface ResolvedRef {
  /** The reference as typed (or as built for a dependency). */
  input: string;
  /** Normalized reference text: what the lock file records under `requested`. */
  requested: string;
  /** The index that turned a short name into a repository. */
  index?: string;
  /** The tag that was fetched (after floating-tag / latest selection); absent when pinned by digest. */
  tag?: string;
  /** Manifest, config, layers; `artifact.ref` carries the digest the tag pointed at. */
  artifact: ResolvedArtifact;
}

/** The normalized text of a reference (`ghcr.io/a/b` -> `ghcr.io/a/b:latest`, `oci:dir` -> `oci:/abs/dir:latest`); throws REF_INVALID. */
export function normalizeRef(text: string): string {
  const layout = layoutReference(text);
  return layout ? formatReference(layout) : formatArtifactRef(parseArtifactRef(text));
}

async function indexesOrNone(session: ResolveSession): Promise<readonly LoadedIndex[]> {
  try {
    return await session.indexes();
  } catch (err) {
    session.warn?.(`indexes not available: ${messageOf(err)}`);
    return [];
  }
}

export { selectTag } from '../artifact/index.js';

/**
 * Resolves one reference as typed: a short name through the indexes, the tag (floating, latest), the
 * platform of an image index, and reads the config. This is the building block `install` and
 * `follow` share.
 */
export async function resolveRef(session: ResolveSession, text: string): Promise<ResolvedRef> {
  // An OCI layout on disk (`oci:DIR[:TAG]`): read through the client, which routes it to the disk (oci-source.ts).
  const layout = layoutReference(text);
  const parsed: ArtifactRef = layout ? { kind: 'oci', ref: layout } : parseArtifactRef(text);
  const requested = normalizeRef(text);
  let repo: OciReference;
  let tag: string | undefined;
  let digest: string | undefined;
  let index: string | undefined;
  if (parsed.kind === 'name') {
    const found = resolveIndexedName(parsed.name, await session.indexes());
    if (found.shadowed.length > 0) session.warn?.(`"${parsed.name.name}" is in several indexes; using index "${found.index}" (also in: ${found.shadowed.join(', ')})`);
    repo = { registry: found.ref.registry, repository: found.ref.repository };
    tag = found.ref.tag;
    index = found.index;
  } else {
    repo = { registry: parsed.ref.registry, repository: parsed.ref.repository };
    tag = parsed.ref.tag;
    digest = parsed.ref.digest;
  }
  if (digest === undefined) tag = await selectTag(session.client, repo, tag);
  const ref: OciReference = { ...repo, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
  session.debug?.(`resolving ${text} as ${formatReference(ref)}`);
  const artifact = await resolveArtifact(session.client, ref, session.platform);
  return { input: text, requested, ...(index !== undefined && { index }), ...(tag !== undefined && { tag }), artifact };
}

/** One artifact of a plan, with where its files go. */
export interface PlannedArtifact {
  name: string;
  type: string;
  version: string;
  /** Normalized refs the user typed for it (empty for a dependency). */
  requested: string[];
  index?: string;
  tag?: string;
  artifact: ResolvedArtifact;
  /** Names of the artifacts its dependencies resolved to. */
  dependencies: string[];
  /** `name version` of the artifacts that need it. */
  requiredBy: string[];
  dir: string;
  /** File mode of everything it places: 0755 for plugins, 0644 otherwise. */
  mode: number;
}

export interface SkippedArtifact {
  name: string;
  type: string;
  version: string;
  requested: string[];
  reason: string;
}

export interface InstallPlan {
  artifacts: PlannedArtifact[];
  skipped: SkippedArtifact[];
  warnings: string[];
}

export interface PlanOptions {
  /** `--type`: install only artifacts of this type; others are skipped with a warning. */
  type?: string;
  /** `--allowed-types`: any other type (dependencies too) refuses the install. Empty: all. */
  allowedTypes: readonly string[];
  resolveDeps: boolean;
  engineVersion?: string;
  rulesfilesDir: string;
  pluginsDir: string;
  /** Directories of the other types, by type (install.dirs); absent types are not installed. */
  dirs?: Readonly<Record<string, string>>;
}

interface Node {
  name: string;
  version: string;
  type: string;
  dependencies?: readonly Dependency[];
  resolved: ResolvedRef;
  requested: string[];
}

function nodeOf(r: ResolvedRef, requested: string[]): Node {
  const { config, type } = r.artifact;
  return { name: config.name, version: config.version, type, ...(config.dependencies && { dependencies: config.dependencies }), resolved: r, requested };
}

/**
 * Where a dependency is looked up, and its tags: cached per name for one plan. The dependencies of an
 * artifact from an OCI layout are looked up in that layout only (offline), by their config's name.
 */
class RegistryDependencySource implements DependencySource<Node> {
  readonly #session: ResolveSession;
  readonly #repos = new Map<string, Promise<{ repo: OciReference; index?: string }>>();
  readonly #tags = new Map<string, Promise<string[]>>();
  readonly #layouts: LayoutArtifacts;

  constructor(session: ResolveSession) {
    this.#session = session;
    this.#layouts = new LayoutArtifacts(session.client, session.platform);
  }

  /** Index lookup by name first; else the requirer's sibling repository (docs/install.md). */
  #locate(name: string, requirer: Node): Promise<{ repo: OciReference; index?: string }> {
    let p = this.#repos.get(name);
    if (!p) {
      p = (async () => {
        const indexes = await indexesOrNone(this.#session);
        try {
          const found = resolveIndexedName({ name }, indexes);
          return { repo: { registry: found.ref.registry, repository: found.ref.repository }, index: found.index };
        } catch (err) {
          if (!isDiginfraError(err, 'ARTIFACT_NOT_FOUND')) throw err;
        }
        return { repo: siblingRepository(requirer.resolved.artifact.ref, name) };
      })();
      this.#repos.set(name, p);
    }
    return p;
  }

  async versions(name: string, requirer: Node): Promise<string[]> {
    const from = requirer.resolved.artifact.ref;
    if (isLayoutReference(from)) return this.#layouts.versions(from, name, labelOf(requirer));
    const { repo } = await this.#locate(name, requirer);
    const key = repositoryKey(repo);
    let p = this.#tags.get(key);
    if (!p) {
      p = this.#session.client.listTags(repo).catch((err: unknown) => {
        if (isDiginfraError(err, 'NOT_FOUND')) {
          throw new DiginfraError('NOT_FOUND', `${labelOf(requirer)} depends on ${name}, which is in no index and not at ${key}`, {
            cause: err,
            hint: `add an index that lists "${name}", or publish it at ${key}; --no-resolve-deps skips dependencies`,
          });
        }
        throw err;
      });
      this.#tags.set(key, p);
    }
    return p;
  }

  async load(name: string, version: string, requirer: Node): Promise<Node> {
    const from = requirer.resolved.artifact.ref;
    if (isLayoutReference(from)) {
      const { tag, artifact } = await this.#layouts.load(from, name, version);
      const text = formatReference({ registry: from.registry, repository: from.repository, tag });
      return nodeOf({ input: text, requested: text, tag, artifact }, []);
    }
    const { repo, index } = await this.#locate(name, requirer);
    const ref = { ...repo, tag: version };
    const artifact = await resolveArtifact(this.#session.client, ref, this.#session.platform);
    if (artifact.config.name !== name) {
      throw new DiginfraError('ARTIFACT_INVALID', `${labelOf(requirer)} depends on ${name}, but ${formatReference(ref)} is an artifact named ${artifact.config.name}`);
    }
    const resolved: ResolvedRef = { input: formatReference(ref), requested: formatReference(ref), ...(index !== undefined && { index }), tag: version, artifact };
    return nodeOf(resolved, []);
  }
}

function dirFor(type: string, label: string, opts: PlanOptions): { dir: string; mode: number } {
  if (type === PLUGIN) return { dir: opts.pluginsDir, mode: 0o755 };
  if (type === RULESFILE) return { dir: opts.rulesfilesDir, mode: 0o644 };
  // Own keys only: a type named like an Object property (`constructor`) has no directory.
  const dir = opts.dirs && Object.hasOwn(opts.dirs, type) ? opts.dirs[type] : undefined;
  if (dir !== undefined) return { dir, mode: 0o644 };
  throw new DiginfraError('TYPE_NOT_ALLOWED', `${label} is of type "${type}", and no directory is set for that type`, {
    hint: `give it one (--dir ${type}=DIR, or install.dirs.${type} in the config), or pull it with \`diginfractl repo pull REF --dest DIR\`; nothing was written`,
  });
}

/** Type filter, allowed types, requirements, and target dirs: the checks every plan goes through. */
function finish(nodes: { node: Node; requested: boolean; requiredBy: string[] }[], opts: PlanOptions, warnings: string[], skipped: SkippedArtifact[]): InstallPlan {
  const items = nodes.map((n) => ({ ...n, label: labelOf(n.node), type: n.node.type }));
  const { kept, skipped: filtered } = filterByType(items, opts.type);
  for (const s of filtered) {
    const why = `--type ${opts.type} (it is a ${s.type}${s.requested ? '' : `, needed by ${s.requiredBy.join(', ')}`})`;
    warnings.push(`not installing ${s.label}: ${why}`);
    skipped.push({ name: s.node.name, type: s.type, version: s.node.version, requested: s.node.requested, reason: why });
  }
  checkAllowedTypes(kept, opts.allowedTypes);
  const targets = kept.map((k) => dirFor(k.type, k.label, opts));
  const req = checkRequirements(
    kept.map((k) => ({ label: k.label, ...(k.node.resolved.artifact.config.requirements && { requirements: k.node.resolved.artifact.config.requirements }) })),
    opts.engineVersion !== undefined ? { engineVersion: opts.engineVersion } : {},
  );
  warnings.push(...req.warnings);
  const names = new Set(nodes.map((n) => n.node.name));
  const artifacts = kept.map((k, i): PlannedArtifact => {
    const r = k.node.resolved;
    const dependencies: string[] = [];
    for (const dep of k.node.dependencies ?? []) {
      const target = [dep, ...(dep.alternatives ?? [])].find((c) => names.has(c.name));
      if (target && !dependencies.includes(target.name)) dependencies.push(target.name);
    }
    return {
      name: k.node.name,
      type: k.type,
      version: k.node.version,
      requested: k.node.requested,
      ...(r.index !== undefined && { index: r.index }),
      ...(r.tag !== undefined && { tag: r.tag }),
      artifact: r.artifact,
      dependencies,
      requiredBy: k.requiredBy,
      ...targets[i]!,
    };
  });
  return { artifacts, skipped, warnings };
}

/** Resolves `refs` (as typed), their dependencies, and checks everything. */
export async function planInstall(session: ResolveSession, refs: readonly string[], opts: PlanOptions): Promise<InstallPlan> {
  const warnings: string[] = [];
  const resolved: ResolvedRef[] = [];
  for (const text of refs) resolved.push(await resolveRef(session, text));
  const nodes = resolved.map((r) => nodeOf(r, [r.requested]));
  const { roots, warnings: dupWarnings, dropped } = dedupeRoots(nodes);
  warnings.push(...dupWarnings);
  // Every ref that named a dropped duplicate now answers to the kept one (for --frozen lookups).
  for (const d of dropped) {
    const keep = roots.find((r) => r.name === d.name)!;
    for (const q of d.requested) if (!keep.requested.includes(q)) keep.requested.push(q);
  }
  const graph = opts.resolveDeps
    ? await resolveDependencies(roots, new RegistryDependencySource(session))
    : roots.map((node) => ({ node, requested: true, requiredBy: [] as string[] }));
  return finish(graph, opts, warnings, []);
}

/**
 * `--frozen`: the artifacts recorded in `lock` for `refs` (and the dependencies recorded with them),
 * fetched by digest even if their tags have moved. A ref the lock does not know is LOCKFILE_MISMATCH.
 */
export async function planFrozen(session: ResolveSession, refs: readonly string[], lock: Lockfile | undefined, lockPath: string, opts: PlanOptions): Promise<InstallPlan> {
  const hint = 'run the install without --frozen to resolve it and update the lock file';
  if (!lock) throw new DiginfraError('LOCKFILE_MISMATCH', `--frozen: there is no lock file at ${lockPath}`, { hint });
  const roots: LockEntry[] = [];
  const missing: string[] = [];
  const requestedBy = new Map<LockEntry, string[]>();
  for (const text of refs) {
    const normalized = normalizeRef(text);
    const entry = findRequested(lock, normalized);
    if (!entry) {
      missing.push(text);
      continue;
    }
    if (!roots.includes(entry)) roots.push(entry);
    requestedBy.set(entry, [...(requestedBy.get(entry) ?? []), normalized]);
  }
  if (missing.length > 0) {
    throw new DiginfraError('LOCKFILE_MISMATCH', `--frozen: ${missing.map((m) => `"${m}"`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} not in the lock file ${lockPath}`, { hint });
  }
  const closure = lockClosure(lock, roots, opts.resolveDeps);
  if (closure.missing.length > 0) {
    throw new DiginfraError('LOCKFILE_MISMATCH', `--frozen: the lock file ${lockPath} lacks ${closure.missing.join(', ')}`, { hint });
  }
  const nodes: { node: Node; requested: boolean; requiredBy: string[] }[] = [];
  for (const entry of closure.entries) {
    const ref: OciReference = { registry: entry.registry, repository: entry.repository, ...(entry.tag !== undefined && { tag: entry.tag }), digest: entry.digest };
    const artifact = await resolveArtifact(session.client, ref, session.platform);
    const where = `${formatReference(ref)} (locked as ${entry.name} ${entry.version})`;
    if (artifact.config.name !== entry.name || artifact.config.version !== entry.version) {
      throw new DiginfraError('LOCKFILE_MISMATCH', `${where} is ${artifact.config.name} ${artifact.config.version}`, { hint });
    }
    if (entry.platform && artifact.platform && samePlatform(artifact.platform, session.platform) && formatPlatform(artifact.platform) === entry.platform && artifact.manifestDigest !== entry.manifestDigest) {
      throw new DiginfraError('LOCKFILE_MISMATCH', `${where}: the ${entry.platform} manifest is ${artifact.manifestDigest}, the lock says ${entry.manifestDigest}`, { hint });
    }
    const requested = requestedBy.get(entry) ?? [];
    const resolved: ResolvedRef = {
      input: formatReference(ref),
      requested: requested[0] ?? formatReference(ref),
      ...(entry.index !== undefined && { index: entry.index }),
      ...(entry.tag !== undefined && { tag: entry.tag }),
      artifact,
    };
    const node = nodeOf(resolved, requested);
    const requiredBy = closure.entries.filter((e) => e.dependencies?.includes(entry.name)).map((e) => labelOf(e));
    nodes.push({ node, requested: roots.includes(entry), requiredBy });
  }
  return finish(nodes, opts, [], []);
}
