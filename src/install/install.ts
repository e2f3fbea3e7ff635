/**
 * `artifact install` end to end: plan (resolve, dependencies, checks) -> lock the target dirs (and
 * sweep what a crashed run left there) -> stage every artifact (blobs from the cache, downloaded on a
 * miss) -> check that no file belongs to two artifacts -> move all files in, delete what an older
 * version shipped and the new one does not, write the lock file: that last step all or nothing
 * (commitStagedAll keeps the previous version of every replaced file until the lock file is
 * written, and puts them all back on any failure). So any failure leaves the target dirs and the
 * lock file exactly as they were. A kill during the move is settled by the next install, before it
 * does anything else (recover.ts): the intent record written before the first rename says what to
 * complete or undo.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { DiginfraError } from '../errors.js';
import { formatReference, type OciReference } from '../reference/index.js';
import { formatPlatform } from '../registry/index.js';
import { sweepStaleStaging, writeFileAtomic } from '../util/index.js';
import { type BlobCache, withManifestCache } from '../content/index.js';
import { acquireDirLocks, type HeldLocks, type LockOwner } from './dir-lock.js';
import { formatLockfile, mergeLock, readLockfile, writeLockfile, type LockEntry, type Lockfile } from './lockfile.js';
import { planFrozen, planInstall, type InstallPlan, type PlanOptions, type PlannedArtifact, type ResolveSession, type SkippedArtifact } from './plan.js';
import { recoverInterruptedChanges, type SettledIntent } from './recover.js';
import { commitStagedAll, discardStaged, stageArtifact, type BlobEvent, type StagedArtifact } from './stage.js';

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
  /** Told of each install a kill had interrupted, once it is completed or undone (for logging). */
  onRecovered?: (settled: SettledIntent) => void;
  /** After a successful install, cached blobs unused for this long are removed (0: never). */
  cacheMaxAgeMs?: number;
  /**
   * Checks each planned artifact (the digest its tag pointed at; its name and type) before anything is
   * written: where it comes from, its signatures.
   */
  verify?: (ref: OciReference & { digest: string }, planned: PlannedArtifact) => Promise<void>;
  /**
   * Abandons the install until its files start to move (downloads stop, temp files and staging dirs
   * are removed, the target dirs are as they were) and rejects with the signal's reason; once the
   * move has begun it completes (a few renames).
   */
  signal?: AbortSignal;
}

/** What `-o json` reports per artifact: its lock entry, with absolute paths and what this run did. */
export interface InstalledArtifact extends Omit<LockEntry, 'requested' | 'dependencies' | 'files'> {
  /** The refs the user typed for it (normalized); empty for a dependency. */
  requested: string[];
  dependencies: string[];
  /** `registry/repository:tag@digest`. */
  ref: string;
  /** Absolute paths of every file of the artifact. */
  files: string[];
  /** Of those, the ones written now (the rest were already identical). */
  placed: string[];
  requiredBy: string[];
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

/**
 * Refuses an install where two artifacts would write the same file: two of this install, or one of
 * this install and one that the lock file records (installed earlier, not part of this install).
 * Replacing the other artifact's file would silently drop its content while the lock file still
 * says it is there; the user decides which one to keep.
 */
function checkCollisions(staged: readonly StagedArtifact[], previous: Lockfile | undefined, planned: readonly PlannedArtifact[], lockfile: string): void {
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
  const plannedNames = new Set(planned.map((p) => p.name));
  for (const e of previous?.artifacts ?? []) {
    if (plannedNames.has(e.name)) continue;
    for (const rel of e.files) {
      const abs = inside(resolve(e.dir), rel);
      const label = abs === undefined ? undefined : owner.get(abs);
      if (label !== undefined) {
        throw new DiginfraError('ARTIFACT_INVALID', `${label} ships ${abs}, which belongs to ${e.type} ${e.name} ${e.version} (installed earlier, recorded in ${lockfile})`, {
          hint: `nothing was written; install ${label.split(' ')[0]} into another directory, or, if ${e.name} is no longer wanted, delete its files and its entry in ${lockfile} first`,
        });
      }
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

/**
 * The install locks, or the signal's reason as soon as it aborts (a wait for another install can be
 * a minute); locks taken after that are released at once.
 */
async function unlessAborted(taking: Promise<HeldLocks>, signal: AbortSignal | undefined): Promise<HeldLocks> {
  if (signal === undefined) return taking;
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([taking, aborted]);
  } catch (err) {
    if (signal.aborted) void taking.then((late) => late.release()).catch(() => undefined);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}

export async function installArtifacts(opts: InstallOptions): Promise<InstallResult> {
  const lockfile = resolve(opts.lockfile);
  // Before anything else: an install killed while moving files left a mix; make it one version again.
  const recovered = await recoverInterruptedChanges([dirname(lockfile), opts.rulesfilesDir, opts.pluginsDir, ...Object.values(opts.dirs ?? {})], {
    ...(opts.lockTimeoutMs !== undefined && { timeoutMs: opts.lockTimeoutMs }),
    ...(opts.onWaitLock !== undefined && { onWait: opts.onWaitLock }),
  });
  for (const r of recovered) opts.onRecovered?.(r);
  const session: ResolveSession = { ...opts.session, client: withManifestCache(opts.session.client, opts.cache) };
  const plan = opts.frozen
    ? await planFrozen(session, opts.refs, await readLockfile(lockfile), lockfile, opts)
    : await planInstall(session, opts.refs, opts);
  opts.onPlan?.(plan);
  // Every artifact, dependencies included, passes before the first byte is written.
  if (opts.verify) for (const p of plan.artifacts) await opts.verify(p.artifact.ref, p);
  const result: InstallResult = { installed: [], skipped: plan.skipped, removed: [], lockfile, warnings: plan.warnings, downloaded: { blobs: 0, bytes: 0 } };
  if (plan.artifacts.length === 0) return result;

  const dirs = [...plan.artifacts.map((p) => resolve(p.dir)), dirname(lockfile)];
  const locks = await unlessAborted(
    acquireDirLocks(dirs, {
      ...(opts.lockTimeoutMs !== undefined && { timeoutMs: opts.lockTimeoutMs }),
      ...(opts.onWaitLock !== undefined && { onWait: opts.onWaitLock }),
    }),
    opts.signal,
  );
  const staged: StagedArtifact[] = [];
  let committed = 0;
  try {
    // Under the lock no install of ours is using these dirs: what a crashed run left is removed.
    for (const dir of locks.dirs) {
      for (const path of await sweepStaleStaging(dir)) session.debug?.(`removed ${path}, left by an install that did not finish`);
    }
    for (const path of await opts.cache.sweepTemp()) session.debug?.(`removed ${path}, an unfinished download`);
    // Read under the lock: another install may have just finished.
    const previous = await readLockfile(lockfile);
    for (const p of plan.artifacts) {
      const s = await stageArtifact(session.client, opts.cache, p.artifact, resolve(p.dir), {
        mode: p.mode,
        label: `${p.name} ${p.version}`,
        ...(opts.onBlob !== undefined && { onBlob: opts.onBlob }),
        ...(opts.signal !== undefined && { signal: opts.signal }),
      });
      staged.push(s);
      result.downloaded.blobs += s.downloaded.blobs;
      result.downloaded.bytes += s.downloaded.bytes;
    }
    checkCollisions(staged, previous, plan.artifacts, lockfile);

    // Everything is staged: from here on, files move into place, all or nothing: a failure in any
    // artifact's move, in a removal or in writing the lock file puts every file back as it was.
    const newFiles = new Map(plan.artifacts.map((p, i) => [p.name, staged[i]!.files.map((f) => f.rel)]));
    const entries = plan.artifacts.map((p, i) => lockEntryOf(p, staged[i]!.files.map((f) => f.rel).sort()));
    const next = mergeLock(previous, entries);
    const text = await formatLockfile(next);
    const current = await readFile(lockfile, 'utf8').catch(() => undefined);
    // The last point where an interruption leaves everything as it was; past it, the move completes.
    opts.signal?.throwIfAborted();
    committed = staged.length; // commitStagedAll removes the staging dirs, whatever happens
    const { sets, removed } = await commitStagedAll(staged, {
      remove: staleFiles(previous, plan.artifacts, newFiles),
      // A kill from here on is settled by the next run: forward once the lock file holds `text`, else back.
      intent: { dir: dirname(lockfile), commit: { path: lockfile, content: text } },
      beforeCommit: async () => {
        if (current === text) return;
        try {
          await writeLockfile(lockfile, next);
        } catch (err) {
          // Written but not synced (the rename succeeded): put the previous one back with the files.
          if ((await readFile(lockfile, 'utf8').catch(() => undefined)) === text) {
            await (current === undefined ? rm(lockfile, { force: true }) : writeFileAtomic(lockfile, current)).catch(() => undefined);
          }
          throw err;
        }
      },
    });
    for (const [i, p] of plan.artifacts.entries()) {
      const dir = resolve(p.dir);
      const rels = entries[i]!.files;
      // The summary is the lock entry with absolute paths and what this run did.
      result.installed.push({
        ...entries[i]!,
        requested: p.requested,
        dependencies: p.dependencies,
        ref: formatReference(p.artifact.ref),
        files: rels.map((r) => join(dir, r)),
        placed: sets[i]!.placed.map((r) => join(dir, r)).sort(),
        requiredBy: p.requiredBy,
      });
    }
    result.removed.push(...removed);
    // Every blob this install used was touched on the way: only what nothing used for a while goes.
    if (opts.cacheMaxAgeMs) {
      const pruned = await opts.cache.prune(opts.cacheMaxAgeMs);
      if (pruned.removed.length > 0) session.debug?.(`removed ${pruned.removed.length} cached blob(s), ${pruned.bytes} bytes, unused for ${Math.round(opts.cacheMaxAgeMs / 3_600_000)} h`);
    }
    return result;
  } finally {
    for (const s of staged.slice(committed)) await discardStaged(s).catch(() => undefined);
    await locks.release();
  }
}
