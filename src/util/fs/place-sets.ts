/**
 * Several sets of staged files moved into their destinations ALL OR NOTHING: the previous version of
 * every replaced file is kept until the end, and any failure puts every destination back as it was.
 * Three steps: prepare (keep backups; nothing visible changes), apply (journaling how to undo each
 * change), and, on failure, roll back (newest change first).
 */
import { chmod, copyFile, link, lstat, mkdir, readlink, rename, rm, rmdir, stat, symlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { DiginfraError, messageOf } from '../../errors.js';
import { fsyncDir, fsyncDirsDeepestFirst, fsyncFile } from './fsync.js';
import { placement, type StagedFile } from './place.js';
import { sameContent } from './same-content.js';
import { intentPath, newIntent, removeIntent, sha256Hex, writeIntent, type IntentChange, type IntentRecord } from './intent.js';
import { makeStagingDir } from './staging.js';

/** Files of one destination dir, staged in `stagingDir` (same filesystem, see makeStagingDir). */
export interface FileSet {
  stagingDir: string;
  files: readonly StagedFile[];
  destDir: string;
}

export interface PlaceFileSetsOptions {
  /** As placeFiles: a destination with the same bytes is not replaced, only its mode fixed. */
  skipIdentical: boolean;
  /** Absolute paths to delete as part of the same change (put back on failure). Directories are left alone. */
  remove?: readonly string[];
  /**
   * Runs once every file is in place and every removal done, before the change is final (e.g. to
   * write the lock file that records it). If it throws, everything is rolled back.
   */
  beforeCommit?: () => Promise<void>;
  /**
   * Survive a kill: before the first rename, an intent record (intent.ts) listing every change is
   * written in `dir` (locked by the caller, like every destination), and removed when the change is
   * over. A record left by a killed process is settled by settleIntent: forward when `commit.path`
   * holds `commit.content` (what beforeCommit writes), back otherwise.
   */
  intent?: { dir: string; commit?: { path: string; content: string } };
}

export interface PlaceFileSetsResult {
  /** One per set, in order: files renamed in, and files left alone because identical. */
  sets: { placed: string[]; unchanged: string[] }[];
  /** The `remove` paths that existed and were deleted. */
  removed: string[];
}

/** One step of a rollback, applied in reverse order of the changes. */
type Undo =
  | { kind: 'restore'; path: string; backup: string }
  | { kind: 'delete'; path: string }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'rmdir'; path: string };

interface PlannedPlacement {
  rel: string;
  from: string;
  to: string;
  mode: number;
  action: 'place' | 'chmod' | 'skip';
  /** For 'place' over an existing entry: where its previous version is kept. */
  backup?: string;
  /** For 'chmod': the mode to put back. */
  oldMode?: number;
}

/** The changes made so far and how to undo them, in order. */
interface Journal {
  undo: Undo[];
  /** Directories whose entries changed: fsynced after the change (and after a rollback). */
  touched: Set<string>;
}

/**
 * Where the previous versions are kept: one staging dir per destination (so the same filesystem,
 * and moving a file there or back is a rename), entries numbered.
 */
class Backups {
  readonly #dirs = new Map<string, string>();
  #count = 0;

  /** A new backup path in a backup dir of `destDir`. */
  async next(destDir: string): Promise<string> {
    let b = this.#dirs.get(destDir);
    if (b === undefined) {
      b = await makeStagingDir(destDir);
      this.#dirs.set(destDir, b);
    }
    return join(b, String(this.#count++));
  }

  get dirs(): string[] {
    return [...this.#dirs.values()];
  }

  async drop(): Promise<void> {
    for (const b of this.#dirs.values()) await rm(b, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
}

/**
 * Keeps the current entry at `path` under `backup` without changing `path`: a hard link (same inode:
 * bytes, mode, owner and times kept), or where the filesystem refuses one, a copy (a symlink is
 * recreated, never followed).
 */
async function keepBackup(path: string, backup: string, isSymlink: boolean): Promise<void> {
  try {
    await link(path, backup);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw err;
  }
  if (isSymlink) {
    await symlink(await readlink(path), backup);
    return;
  }
  await copyFile(path, backup);
  await chmod(backup, (await stat(path)).mode & 0o7777);
}

/** A `remove` path that exists, and where it goes meanwhile. */
interface PlannedRemoval {
  path: string;
  backup: string;
}

/** The directory of `destDirs` that holds `path` (the deepest), if any. */
function ownerOf(path: string, destDirs: readonly string[]): string | undefined {
  return destDirs.filter((d) => path.startsWith(d + sep)).sort((x, y) => y.length - x.length)[0];
}

/**
 * 1. Prepare: decides what each file needs (place, fix the mode, or nothing), keeps what will be
 * replaced and picks where removed files go. Nothing visible changes; on failure the backups are
 * dropped.
 */
async function prepare(plans: PlannedPlacement[][], destDirs: readonly string[], backups: Backups, opts: PlaceFileSetsOptions): Promise<PlannedRemoval[]> {
  const skipIdentical = opts.skipIdentical;
  try {
    for (const [i, plan] of plans.entries()) {
      for (const p of plan) {
        const current = await lstat(p.to).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
          throw err;
        });
        if (current === undefined) continue;
        if (skipIdentical && current.isFile() && (await sameContent(p.from, p.to))) {
          const mode = current.mode & 0o7777;
          if (mode !== p.mode) Object.assign(p, { action: 'chmod', oldMode: mode });
          else p.action = 'skip';
          continue;
        }
        // A directory in the way cannot be replaced by a file: its rename fails in apply, and is rolled back.
        if (current.isDirectory()) continue;
        p.backup = await backups.next(destDirs[i]!);
        await keepBackup(p.to, p.backup, current.isSymbolicLink());
      }
    }
    const removals: PlannedRemoval[] = [];
    for (const path of opts.remove ?? []) {
      const st = await lstat(path).catch(() => undefined);
      if (st === undefined || st.isDirectory()) continue;
      removals.push({ path, backup: await backups.next(ownerOf(path, destDirs) ?? dirname(path)) });
    }
    return removals;
  } catch (err) {
    await backups.drop();
    throw new DiginfraError('IO', `cannot prepare the install: ${messageOf(err)}`, { cause: err, hint: 'no file was changed' });
  }
}

/** Puts one planned file in place (chmod, fsync, parents, rename), journaling how to undo it. */
async function placeOne(p: PlannedPlacement, journal: Journal): Promise<void> {
  await chmod(p.from, p.mode);
  await fsyncFile(p.from);
  const created = await mkdir(dirname(p.to), { recursive: true });
  if (created !== undefined) {
    // Every directory from `created` down to the file's parent is new: undone deepest first.
    const chain: string[] = [];
    for (let d = dirname(p.to); ; d = dirname(d)) {
      chain.unshift(d);
      journal.touched.add(dirname(d));
      if (d === created || dirname(d) === d) break;
    }
    for (const d of chain) journal.undo.push({ kind: 'rmdir', path: d });
  }
  await rename(p.from, p.to);
  journal.undo.push(p.backup !== undefined ? { kind: 'restore', path: p.to, backup: p.backup } : { kind: 'delete', path: p.to });
  journal.touched.add(dirname(p.to));
}

/**
 * 2. Apply: every file in place, every `remove` path moved into the backups, the touched directories
 * fsynced, then `beforeCommit`. Returns what failed (with the step it was in: '' for beforeCommit),
 * or undefined.
 */
async function apply(
  plans: PlannedPlacement[][],
  removals: readonly PlannedRemoval[],
  opts: PlaceFileSetsOptions,
  journal: Journal,
  result: PlaceFileSetsResult,
): Promise<{ what: string; err: unknown } | undefined> {
  let step = '';
  let changes = 0;
  try {
    for (const [i, plan] of plans.entries()) {
      for (const p of plan) {
        step = `cannot place ${p.to}`;
        if (p.action === 'skip' || p.action === 'chmod') {
          if (p.action === 'chmod') {
            await chmod(p.to, p.mode);
            journal.undo.push({ kind: 'chmod', path: p.to, mode: p.oldMode! });
            stopForTest(`change:${++changes}`);
          }
          result.sets[i]!.unchanged.push(p.rel);
          continue;
        }
        await placeOne(p, journal);
        result.sets[i]!.placed.push(p.rel);
        stopForTest(`change:${++changes}`);
      }
    }
    for (const { path, backup } of removals) {
      step = `cannot remove ${path}`;
      await rename(path, backup);
      journal.undo.push({ kind: 'restore', path, backup });
      journal.touched.add(dirname(path));
      result.removed.push(path);
      stopForTest(`change:${++changes}`);
    }
    step = 'cannot sync the directories written';
    await fsyncDirsDeepestFirst(journal.touched);
    step = '';
    await opts.beforeCommit?.();
    stopForTest('commit');
    return undefined;
  } catch (err) {
    return { what: step, err };
  }
}

/**
 * Tests only (test/reliability/interruption.test.ts): with DIGINFRACTL_TEST_STOP_AT set to a point
 * of the move phase, the process stops itself there (SIGSTOP), so that a test can look at the
 * half-made change and kill it. Points: `change:N` after the Nth change (`change:0`: the intent
 * record is written, nothing renamed yet), and `commit` once beforeCommit returned.
 */
function stopForTest(point: string): void {
  if (process.env.DIGINFRACTL_TEST_STOP_AT === point) process.kill(process.pid, 'SIGSTOP');
}

/** The intent record of the change planned: what each step replaces, by what, and where the old is kept. */
function intentOf(plans: PlannedPlacement[][], removals: readonly PlannedRemoval[], sets: readonly FileSet[], destDirs: readonly string[], backups: Backups, newDirs: readonly string[], intent: NonNullable<PlaceFileSetsOptions['intent']>): IntentRecord {
  const changes: IntentChange[] = [];
  for (const p of plans.flat()) {
    if (p.action === 'place') changes.push({ op: 'place', from: p.from, to: p.to, mode: p.mode, ...(p.backup !== undefined && { backup: p.backup }) });
    else if (p.action === 'chmod') changes.push({ op: 'chmod', path: p.to, mode: p.mode, oldMode: p.oldMode! });
  }
  for (const r of removals) changes.push({ op: 'remove', path: r.path, backup: r.backup });
  // The commit file's dir too (follow's state dir): recovery locks it and may read the file there.
  const commitDir = intent.commit !== undefined ? [dirname(resolve(intent.commit.path))] : [];
  const dirs = new Set([...destDirs, resolve(intent.dir), ...commitDir, ...removals.map((r) => ownerOf(r.path, destDirs) ?? dirname(r.path))]);
  return newIntent({
    dirs: [...dirs],
    changes,
    newDirs: [...newDirs],
    scratch: [...backups.dirs, ...sets.map((s) => resolve(s.stagingDir))],
    ...(intent.commit !== undefined && { commit: { path: resolve(intent.commit.path), sha256: sha256Hex(intent.commit.content) } }),
  });
}

/** Parent directories of the files to place that do not exist yet (created by the change). */
async function missingParents(plans: PlannedPlacement[][]): Promise<string[]> {
  const missing = new Set<string>();
  for (const p of plans.flat()) {
    if (p.action !== 'place') continue;
    for (let d = dirname(p.to); !missing.has(d) && dirname(d) !== d; d = dirname(d)) {
      if ((await lstat(d).catch(() => undefined)) !== undefined) break;
      missing.add(d);
    }
  }
  return [...missing];
}

/** Writes the intent record (after the backups are durable), or drops the backups and throws. */
async function announce(record: IntentRecord, dir: string, backups: Backups): Promise<void> {
  try {
    for (const b of backups.dirs) await fsyncDir(b);
    await writeIntent(dir, record);
  } catch (err) {
    await backups.drop();
    throw new DiginfraError('IO', `cannot prepare the install: ${messageOf(err)}`, { cause: err, hint: 'no file was changed' });
  }
  stopForTest('change:0');
}

/**
 * 3. Roll back, newest change first, and throw `failed`. When a step of the rollback itself fails,
 * the error says which paths were not restored and the backups are left in place.
 */
async function rollBack(journal: Journal, backups: Backups, failed: { what: string; err: unknown }, intentDir: string | undefined): Promise<never> {
  const notRestored: string[] = [];
  for (const u of journal.undo.reverse()) {
    try {
      if (u.kind === 'restore') await rename(u.backup, u.path);
      else if (u.kind === 'delete') await rm(u.path, { force: true });
      else if (u.kind === 'chmod') await chmod(u.path, u.mode);
      else await rmdir(u.path).catch(() => undefined); // not empty: someone else's, keep it
    } catch (err) {
      notRestored.push(`${u.path} (${messageOf(err)})`);
    }
  }
  for (const dir of [...journal.touched].sort((x, y) => y.length - x.length)) await fsyncDir(dir).catch(() => undefined);
  if (notRestored.length > 0) {
    throw new DiginfraError('IO', `${failed.what || 'install failed'}: ${messageOf(failed.err)}; and the rollback failed for ${notRestored.join(', ')}`, {
      cause: failed.err,
      hint: intentDir !== undefined
        ? `the previous versions are kept in ${backups.dirs.join(', ')}; the next install puts them back (${intentPath(intentDir)} says how)`
        : `the previous versions are kept in ${backups.dirs.join(', ')}; move them back by hand`,
    });
  }
  // The record goes first: without it nothing would undo an interrupted drop, and nothing needs to.
  if (intentDir !== undefined) await removeIntent(intentDir).catch(() => undefined);
  await backups.drop();
  if (failed.what === '' && failed.err instanceof DiginfraError) throw failed.err;
  throw new DiginfraError(failed.err instanceof DiginfraError ? failed.err.code : 'IO', `${failed.what || 'install failed'}: ${messageOf(failed.err)}`, {
    cause: failed.err,
    hint: 'nothing was changed: every file already placed was put back as it was',
  });
}

/**
 * Moves several sets of staged files into their destinations ALL OR NOTHING. Before the first
 * rename, the previous version of every file about to be replaced is kept (hard link, else copy) in
 * a backup dir (a staging dir of the same destination, so the same filesystem). Then every file is
 * renamed in (as placeFiles: chmod + fsync first, identical files skipped with `skipIdentical`),
 * `remove` paths are moved into the backups, the touched directories are fsynced, and
 * `beforeCommit` runs. If any of that fails, the changes are undone in reverse order: backups are
 * renamed back, files placed where there was none are deleted, modes are put back and directories
 * created are removed, and the error is thrown; every destination is then as it was. Only a failure
 * of the rollback itself (reported in the error, backups then left in place) leaves a mix.
 *
 * A reader sees each file change by one rename, as with placeFiles; the sets are not swapped in one
 * instant (no filesystem can), but a failure never leaves some of them applied.
 */
export async function placeFileSets(sets: readonly FileSet[], opts: PlaceFileSetsOptions): Promise<PlaceFileSetsResult> {
  // Every path is checked before anything is touched.
  const plans: PlannedPlacement[][] = sets.map((set) =>
    set.files.map((file) => ({ rel: file.rel, ...placement(set.stagingDir, set.destDir, file.rel), mode: file.mode, action: 'place' as const })),
  );
  const destDirs = sets.map((s) => resolve(s.destDir));
  const backups = new Backups();
  const removals = await prepare(plans, destDirs, backups, opts);
  const intentDir = opts.intent && resolve(opts.intent.dir);
  if (opts.intent !== undefined) {
    const newDirs = await missingParents(plans);
    await announce(intentOf(plans, removals, sets, destDirs, backups, newDirs, opts.intent), intentDir!, backups);
  }
  const journal: Journal = { undo: [], touched: new Set() };
  const result: PlaceFileSetsResult = { sets: sets.map(() => ({ placed: [], unchanged: [] })), removed: [] };
  const failed = await apply(plans, removals, opts, journal, result);
  if (failed !== undefined) return rollBack(journal, backups, failed, intentDir);
  // The record goes before the backups: a kill in between leaves only backups, which a sweep removes.
  if (intentDir !== undefined) await removeIntent(intentDir);
  await backups.drop();
  return result;
}
