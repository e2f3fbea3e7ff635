/**
 * `artifact install` end to end: plan (resolve, dependencies, checks) -> lock the target dirs ->
 * stage every artifact (blobs from the cache, downloaded on a miss) -> move all files in -> delete what
 * an older version shipped and the new one does not -> write the lock file. Until the move, nothing in
 * the target dirs changes, so any failure before it leaves them exactly as they were.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { DiginfraError } from '../errors.js';
import { formatReference } from '../reference/reference.js';
import { formatPlatform } from '../registry/media-types.js';
import { withManifestCache, type BlobCache } from './cache.js';
import { acquireDirLocks, type LockOwner } from './dir-lock.js';
import { formatLockfile, mergeLock, readLockfile, writeLockfile, type LockEntry, type Lockfile } from './lockfile.js';
import { planFrozen, planInstall, type InstallPlan, type PlanOptions, type PlannedArtifact, type ResolveSession, type SkippedArtifact } from './plan.js';
import { commitStaged, discardStaged, stageArtifact, type BlobEvent, type StagedArtifact } from './stage.js';

export interface InstallOptions extends PlanOptions {
  /** References as typed (names, INDEX::names, registry refs). */
  refs: readonly string[];
  session: ResolveSession;
  cache: BlobCache;
  /** Absolute path of diginfractl.lock. */
  lockfile: string;
  /** Install exactly what the lock file records for `refs`. */
  frozen?: boolean;
  /** How long to wait for a concurrent install (default 60 s). */
  lockTimeoutMs?: number;
  onBlob?: (event: BlobEvent) => void;
  onWaitLock?: (dir: string, holder: LockOwner | undefined) => void;
  /** Called with the plan before anything is written (for logging). */
  onPlan?: (plan: InstallPlan) => void;
}

export interface InstalledArtifact {
  name: string;
  type: string;
  version: string;
  /** The refs the user typed for it (normalized); empty for a dependency. */
  requested: string[];
  /** `registry/repository:tag@digest`. */
  ref: string;
  registry: string;
  repository: string;
  tag?: string;
  /** What the tag pointed at (image index or manifest). */
  digest: string;
  manifestDigest: string;
  platform?: string;
  dir: string;
  /** Absolute paths of every file of the artifact. */
  files: string[];
  /** Of those, the ones written now (the rest were already identical). */
  placed: string[];
  requiredBy: string[];
  dependencies: string[];
}

export interface InstallResult {
  installed: InstalledArtifact[];
  skipped: SkippedArtifact[];
  /** Files deleted because the new version of their artifact no longer ships them (absolute). */
  removed: string[];
  lockfile: string;
  warnings: string[];
  downloaded: { blobs: number; bytes: number };
}

function lockEntryOf(p: PlannedArtifact, files: string[]): LockEntry {
  const a = p.artifact;
  return {
    name: p.name,
    type: p.type,
    version: p.version,
    ...(p.requested.length > 0 && { requested: p.requested }),
    ...(p.index !== undefined && { index: p.index }),
    registry: a.ref.registry,
    repository: a.ref.repository,
    ...(p.tag !== undefined && { tag: p.tag }),
    digest: a.ref.digest,
    manifestDigest: a.manifestDigest,
    ...(a.platform !== undefined && { platform: formatPlatform(a.platform) }),
    ...(p.dependencies.length > 0 && { dependencies: p.dependencies }),
    dir: resolve(p.dir),
    files,
  };
}

/** A relative path from a lock file that stays inside `dir`, or undefined. */
function inside(dir: string, rel: string): string | undefined {
  if (rel === '' || isAbsolute(rel)) return undefined;
  const n = normalize(rel);
  if (n === '..' || n.startsWith(`..${sep}`)) return undefined;
  return join(dir, n);
}

/** Two artifacts of one install that would write the same file. */
function checkCollisions(staged: readonly StagedArtifact[]): void {
  const owner = new Map<string, string>();
  for (const s of staged) {
    for (const f of s.files) {
      const abs = join(resolve(s.dest), f.rel);
      const label = `${s.artifact.config.name} ${s.artifact.config.version}`;
      const other = owner.get(abs);
      if (other && other !== label) {
        throw new DiginfraError('ARTIFACT_INVALID', `${other} and ${label} both ship ${abs}`, { hint: 'install them into different directories, or only one of them; nothing was written' });
      }
      owner.set(abs, label);
    }
  }
}

/**
 * Files that the previous version of an artifact placed and the new one does not ship, and that no
 * other artifact (of this install or of the lock) claims.
 */
function staleFiles(previous: Lockfile | undefined, planned: readonly PlannedArtifact[], newFiles: Map<string, string[]>): string[] {
  if (!previous) return [];
  const claimed = new Set<string>();
  for (const p of planned) for (const rel of newFiles.get(p.name) ?? []) claimed.add(join(resolve(p.dir), rel));
  const plannedNames = new Set(planned.map((p) => p.name));
  for (const e of previous.artifacts) {
    if (plannedNames.has(e.name)) continue;
    for (const rel of e.files) {
      const abs = inside(e.dir, rel);
      if (abs) claimed.add(abs);
    }
  }
  const out: string[] = [];
  for (const p of planned) {
    const old = previous.artifacts.find((e) => e.name === p.name);
    if (!old || resolve(old.dir) !== resolve(p.dir)) continue;
    for (const rel of old.files) {
      const abs = inside(resolve(p.dir), rel);
      if (abs && !claimed.has(abs) && !out.includes(abs)) out.push(abs);
    }
  }
  return out;
}

export async function installArtifacts(opts: InstallOptions): Promise<InstallResult> {
  const lockfile = resolve(opts.lockfile);
  const session: ResolveSession = { ...opts.session, client: withManifestCache(opts.session.client, opts.cache) };
  const plan = opts.frozen
    ? await planFrozen(session, opts.refs, await readLockfile(lockfile), lockfile, opts)
    : await planInstall(session, opts.refs, opts);
  opts.onPlan?.(plan);
  const result: InstallResult = { installed: [], skipped: plan.skipped, removed: [], lockfile, warnings: plan.warnings, downloaded: { blobs: 0, bytes: 0 } };
  if (plan.artifacts.length === 0) return result;

  const dirs = [...plan.artifacts.map((p) => resolve(p.dir)), dirname(lockfile)];
  const locks = await acquireDirLocks(dirs, {
    ...(opts.lockTimeoutMs !== undefined && { timeoutMs: opts.lockTimeoutMs }),
    ...(opts.onWaitLock !== undefined && { onWait: opts.onWaitLock }),
  });
  const staged: StagedArtifact[] = [];
  let committed = 0;
  try {
    // Read under the lock: another install may have just finished.
    const previous = await readLockfile(lockfile);
    for (const p of plan.artifacts) {
      const s = await stageArtifact(session.client, opts.cache, p.artifact, resolve(p.dir), {
        mode: p.mode,
        label: `${p.name} ${p.version}`,
        ...(opts.onBlob !== undefined && { onBlob: opts.onBlob }),
      });
      staged.push(s);
      result.downloaded.blobs += s.downloaded.blobs;
      result.downloaded.bytes += s.downloaded.bytes;
    }
    checkCollisions(staged);

    // Everything is staged: from here on, files move into place.
    const newFiles = new Map(plan.artifacts.map((p, i) => [p.name, staged[i]!.files.map((f) => f.rel)]));
    const entries: LockEntry[] = [];
    for (const [i, p] of plan.artifacts.entries()) {
      const s = staged[i]!;
      const { placed } = await commitStaged(s);
      committed = i + 1;
      const dir = resolve(p.dir);
      const rels = s.files.map((f) => f.rel).sort();
      entries.push(lockEntryOf(p, rels));
      const a = p.artifact;
      result.installed.push({
        name: p.name,
        type: p.type,
        version: p.version,
        requested: p.requested,
        ref: formatReference(a.ref),
        registry: a.ref.registry,
        repository: a.ref.repository,
        ...(p.tag !== undefined && { tag: p.tag }),
        digest: a.ref.digest,
        manifestDigest: a.manifestDigest,
        ...(a.platform !== undefined && { platform: formatPlatform(a.platform) }),
        dir,
        files: rels.map((r) => join(dir, r)),
        placed: placed.map((r) => join(dir, r)).sort(),
        requiredBy: p.requiredBy,
        dependencies: p.dependencies,
      });
    }
    for (const abs of staleFiles(previous, plan.artifacts, newFiles)) {
      await rm(abs, { force: true });
      result.removed.push(abs);
    }
    const next = mergeLock(previous, entries);
    const text = await formatLockfile(next);
    const current = await readFile(lockfile, 'utf8').catch(() => undefined);
    if (current !== text) await writeLockfile(lockfile, next);
    return result;
  } finally {
    for (const s of staged.slice(committed)) await discardStaged(s).catch(() => undefined);
    await locks.release();
  }
}
