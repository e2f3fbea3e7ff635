/**
 * Writes that a reader never sees half done. The engine reloads on any change to its rules dirs, so
 * every file appears by ONE rename of a complete, fsynced file in the same directory, under a
 * temporary name the engine ignores (dot-prefixed, never `*.yaml`). After the renames the directories
 * are fsynced too, so after a crash the disk holds the old file or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, lstat, mkdir, mkdtemp, open, readdir, readlink, rename, rm, rmdir, stat, symlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DiginfraError } from '../errors.js';

/** Prefix of staging dirs: dot-named, so the engine never loads what is inside. */
export const STAGING_PREFIX = '.diginfractl-staging-';

/** `.<name>.tmp-<random>` beside `path`: same directory (so same filesystem), ignored by the engine. */
function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Directory fsync errors that only mean "this filesystem does not do that". */
const FSYNC_UNSUPPORTED = new Set(['EINVAL', 'EISDIR', 'EPERM', 'EBADF', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES']);

/** fsync of a directory, so renames in it survive a crash. Filesystems that refuse it are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!FSYNC_UNSUPPORTED.has(code)) {
      throw new DiginfraError('IO', `cannot fsync directory ${dir}: ${errMessage(err)}`, { cause: err });
    }
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data`: a temp file beside it is written, fsynced and chmod'ed (the mode is
 * exact, whatever the umask; default 0644), renamed over `path`, then the directory is fsynced. A
 * reader sees the old content or the new, never a part. On failure the temp file is removed and
 * `path` is untouched. The parent directory is created when missing.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const dir = dirname(path);
  const tmp = tempName(path);
  try {
    await mkdir(dir, { recursive: true });
    // 'wx': never follows or reuses an existing name; the mode (0600 for secrets) applies from creation.
    const fh = await open(tmp, 'wx', mode & 0o777);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new DiginfraError('IO', `cannot write ${path}: ${errMessage(err)}`, {
      cause: err,
      hint: `${path} was left as it was; check that ${dir} exists, is writable and has free space`,
    });
  }
  await fsyncDir(dir);
}

const COMPARE_CHUNK = 64 * 1024;

/**
 * True when `a` and `b` are both regular files with the same bytes. Sizes first, then both files are
 * read side by side in 64 KiB chunks, stopping at the first difference: memory stays constant
 * whatever the size. A missing file (or one that is not a regular file) gives false.
 */
export async function sameContent(a: string, b: string): Promise<boolean> {
  let sa, sb;
  try {
    [sa, sb] = await Promise.all([stat(a), stat(b)]);
  } catch {
    return false;
  }
  if (!sa.isFile() || !sb.isFile() || sa.size !== sb.size) return false;
  if (sa.dev === sb.dev && sa.ino === sb.ino) return true;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.alloc(COMPARE_CHUNK);
    const bb = Buffer.alloc(COMPARE_CHUNK);
    let position = 0;
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, COMPARE_CHUNK, position), fb.read(bb, 0, COMPARE_CHUNK, position)]);
      if (ra.bytesRead !== rb.bytesRead) return false; // one changed under us
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      position += ra.bytesRead;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/**
 * A new, empty staging dir `destDir/.diginfractl-staging-<random>` (mode 0700). Inside the destination,
 * so it is on the same filesystem and moving files out of it is a rename; dot-named, so the engine
 * never loads it. `destDir` is created when missing. The caller removes it (removeDir) when done.
 */
export async function makeStagingDir(destDir: string): Promise<string> {
  try {
    await mkdir(destDir, { recursive: true });
    return await mkdtemp(join(destDir, STAGING_PREFIX));
  } catch (err) {
    throw new DiginfraError('IO', `cannot create a staging directory in ${destDir}: ${errMessage(err)}`, {
      cause: err,
      hint: `check that ${destDir} is a writable directory`,
    });
  }
}

/** Default age after which a staging dir (or temp file) is taken for a crash's leftover: 10 minutes. */
export const STALE_STAGING_MS = 10 * 60 * 1000;

/** `writeFileAtomic`'s temp names: `.<name>.tmp-<12 hex>`. */
const ATOMIC_TEMP_RE = /^\..+\.tmp-[0-9a-f]{12}$/;

/**
 * Removes what a crashed diginfractl left in `dir`: staging dirs (`.diginfractl-staging-*`) and
 * writeFileAtomic temp files (`.<name>.tmp-<hex>`) whose mtime is older than `olderThanMs` (default
 * 10 min). Younger entries may belong to a run in progress and are left alone; call it under the
 * dir's install lock so that no install of ours is using them. Only direct entries of `dir` are
 * looked at, never followed through symlinks. A missing `dir` gives []; an entry that cannot be
 * removed is skipped (best effort: this is housekeeping, never a reason to fail). Returns the
 * absolute paths removed.
 */
export async function sweepStaleStaging(dir: string, olderThanMs: number = STALE_STAGING_MS): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const cutoff = Date.now() - olderThanMs;
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(STAGING_PREFIX) && !ATOMIC_TEMP_RE.test(name)) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (st.mtimeMs > cutoff) continue;
      if (st.isDirectory() && !name.startsWith(STAGING_PREFIX)) continue;
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
      removed.push(path);
    } catch {
      // gone meanwhile, or not removable: leave it
    }
  }
  return removed;
}

/** Removes a directory tree; a missing one is fine. */
export async function removeDir(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    throw new DiginfraError('IO', `cannot remove ${dir}: ${errMessage(err)}`, { cause: err, hint: `remove ${dir} by hand` });
  }
}

export interface StagedFile {
  /** Path relative to the staging dir and to the destination (`/`-separated). */
  rel: string;
  /** Mode the placed file gets (0644 rules, 0755 plugins). */
  mode: number;
}

/** `rel` if it stays inside its dir, else UNSAFE_ARCHIVE. */
function checkedRel(rel: string, destDir: string): string {
  const parts = rel.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (rel.includes('\0') || isAbsolute(rel) || parts.length === 0 || parts.includes('..')) {
    throw new DiginfraError('UNSAFE_ARCHIVE', `refusing to place ${JSON.stringify(rel)} outside ${destDir}`);
  }
  return parts.join(sep);
}

/** mkdir -p that reports the directories it created (to fsync their parents). */
async function mkdirs(dir: string, created: Set<string>): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    created.add(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
}

/**
 * Moves staged files into `destDir`, one rename(2) per file: each file is chmod'ed and fsynced first,
 * subdirectories are created as needed, and every directory touched is fsynced after the renames.
 * With `skipIdentical`, a destination that already holds the same bytes is not replaced (a rename
 * costs the engine a reload); only its mode is corrected, in place, if it differs. A symlink in the
 * destination is replaced by the file, never written or chmod'ed through.
 *
 * `stagingDir` must be on the same filesystem as `destDir` (use makeStagingDir). The files are moved
 * one at a time: if a rename fails midway, the files already moved are complete new files, the rest
 * are the old ones, and the error names the file that failed and those already placed. For all or
 * nothing (with rollback), use placeFileSets.
 */
export async function placeFiles(
  stagingDir: string,
  files: readonly StagedFile[],
  destDir: string,
  opts: { skipIdentical: boolean },
): Promise<{ placed: string[]; unchanged: string[] }> {
  const placed: string[] = [];
  const unchanged: string[] = [];
  const touched = new Set<string>();
  const dest = resolve(destDir);
  for (const file of files) {
    const rel = checkedRel(file.rel, destDir);
    const from = join(stagingDir, rel);
    const to = join(dest, rel);
    const back = relative(dest, to);
    if (back === '..' || back.startsWith(`..${sep}`)) throw new DiginfraError('UNSAFE_ARCHIVE', `refusing to place ${JSON.stringify(file.rel)} outside ${destDir}`);
    try {
      // A symlink at `to` is never "identical": it is replaced by a real file, its target left alone.
      const current = opts.skipIdentical ? await lstat(to).catch(() => undefined) : undefined;
      if (current?.isFile() && (await sameContent(from, to))) {
        if ((current.mode & 0o7777) !== file.mode) await chmod(to, file.mode);
        unchanged.push(file.rel);
        continue;
      }
      await chmod(from, file.mode);
      await fsyncFile(from);
      await mkdirs(dirname(to), touched);
      await rename(from, to);
    } catch (err) {
      throw new DiginfraError('IO', `cannot place ${to}: ${errMessage(err)}`, {
        cause: err,
        hint: placed.length
          ? `already placed (complete new files): ${placed.join(', ')}; every other file is unchanged`
          : 'no file was changed',
      });
    }
    touched.add(dirname(to));
    placed.push(file.rel);
  }
  // Deepest first, so a new directory's entry is durable in its parent after its own contents.
  for (const dir of [...touched].sort((x, y) => y.length - x.length)) await fsyncDir(dir);
  return { placed, unchanged };
}

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
  const plans: PlannedPlacement[][] = sets.map((set) => {
    const dest = resolve(set.destDir);
    return set.files.map((file) => {
      const rel = checkedRel(file.rel, set.destDir);
      const to = join(dest, rel);
      const back = relative(dest, to);
      if (back === '..' || back.startsWith(`..${sep}`)) throw new DiginfraError('UNSAFE_ARCHIVE', `refusing to place ${JSON.stringify(file.rel)} outside ${set.destDir}`);
      return { rel: file.rel, from: join(set.stagingDir, rel), to, mode: file.mode, action: 'place' as const };
    });
  });
  const destDirs = sets.map((s) => resolve(s.destDir));

  const backupDirs = new Map<string, string>();
  let backupCount = 0;
  const backupFor = async (dir: string): Promise<string> => {
    let b = backupDirs.get(dir);
    if (b === undefined) {
      b = await makeStagingDir(dir);
      backupDirs.set(dir, b);
    }
    return join(b, String(backupCount++));
  };
  const dropBackups = async (): Promise<void> => {
    for (const b of backupDirs.values()) await rm(b, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  };

  // 1. Prepare: decide what each file needs and keep what will be replaced. Nothing visible changes.
  try {
    for (const [i, plan] of plans.entries()) {
      for (const p of plan) {
        const current = await lstat(p.to).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
          throw err;
        });
        if (current === undefined) continue;
        if (opts.skipIdentical && current.isFile() && (await sameContent(p.from, p.to))) {
          const mode = current.mode & 0o7777;
          if (mode !== p.mode) Object.assign(p, { action: 'chmod', oldMode: mode });
          else p.action = 'skip';
          continue;
        }
        // A directory in the way cannot be replaced by a file: its rename fails below, and is rolled back.
        if (current.isDirectory()) continue;
        p.backup = await backupFor(destDirs[i]!);
        await keepBackup(p.to, p.backup, current.isSymbolicLink());
      }
    }
  } catch (err) {
    await dropBackups();
    throw new DiginfraError('IO', `cannot prepare the install: ${errMessage(err)}`, { cause: err, hint: 'no file was changed' });
  }

  // 2. Apply, journaling how to undo each step.
  const undo: Undo[] = [];
  const touched = new Set<string>();
  const result: PlaceFileSetsResult = { sets: sets.map(() => ({ placed: [], unchanged: [] })), removed: [] };
  let failed: { what: string; err: unknown } | undefined;
  let step = '';
  try {
    for (const [i, plan] of plans.entries()) {
      for (const p of plan) {
        step = `cannot place ${p.to}`;
        if (p.action === 'skip' || p.action === 'chmod') {
          if (p.action === 'chmod') {
            await chmod(p.to, p.mode);
            undo.push({ kind: 'chmod', path: p.to, mode: p.oldMode! });
          }
          result.sets[i]!.unchanged.push(p.rel);
          continue;
        }
        await chmod(p.from, p.mode);
        await fsyncFile(p.from);
        const created = await mkdir(dirname(p.to), { recursive: true });
        if (created !== undefined) {
          // Every directory from `created` down to the file's parent is new: undone deepest first.
          const chain: string[] = [];
          for (let d = dirname(p.to); ; d = dirname(d)) {
            chain.unshift(d);
            touched.add(dirname(d));
            if (d === created || dirname(d) === d) break;
          }
          for (const d of chain) undo.push({ kind: 'rmdir', path: d });
        }
        await rename(p.from, p.to);
        undo.push(p.backup !== undefined ? { kind: 'restore', path: p.to, backup: p.backup } : { kind: 'delete', path: p.to });
        touched.add(dirname(p.to));
        result.sets[i]!.placed.push(p.rel);
      }
    }
    for (const path of opts.remove ?? []) {
      step = `cannot remove ${path}`;
      const st = await lstat(path).catch(() => undefined);
      if (st === undefined || st.isDirectory()) continue;
      const dir = dirname(path);
      const owner = destDirs.filter((d) => path.startsWith(d + sep)).sort((x, y) => y.length - x.length)[0];
      const backup = await backupFor(owner ?? dir);
      await rename(path, backup);
      undo.push({ kind: 'restore', path, backup });
      touched.add(dir);
      result.removed.push(path);
    }
    step = 'cannot sync the directories written';
    // Deepest first, so a new directory's entry is durable in its parent after its own contents.
    for (const dir of [...touched].sort((x, y) => y.length - x.length)) await fsyncDir(dir);
    step = '';
    await opts.beforeCommit?.();
  } catch (err) {
    failed = { what: step, err };
  }

  if (failed === undefined) {
    await dropBackups();
    return result;
  }

  // 3. Roll back, newest change first.
  const notRestored: string[] = [];
  for (const u of undo.reverse()) {
    try {
      if (u.kind === 'restore') await rename(u.backup, u.path);
      else if (u.kind === 'delete') await rm(u.path, { force: true });
      else if (u.kind === 'chmod') await chmod(u.path, u.mode);
      else await rmdir(u.path).catch(() => undefined); // not empty: someone else's, keep it
    } catch (err) {
      notRestored.push(`${u.path} (${errMessage(err)})`);
    }
  }
  for (const dir of [...touched].sort((x, y) => y.length - x.length)) await fsyncDir(dir).catch(() => undefined);
  if (notRestored.length > 0) {
    throw new DiginfraError('IO', `${failed.what || 'install failed'}: ${errMessage(failed.err)}; and the rollback failed for ${notRestored.join(', ')}`, {
      cause: failed.err,
      hint: `the previous versions are kept in ${[...backupDirs.values()].join(', ')}; move them back by hand`,
    });
  }
  await dropBackups();
  if (failed.what === '' && failed.err instanceof DiginfraError) throw failed.err;
  throw new DiginfraError(failed.err instanceof DiginfraError ? failed.err.code : 'IO', `${failed.what || 'install failed'}: ${errMessage(failed.err)}`, {
    cause: failed.err,
    hint: 'nothing was changed: every file already placed was put back as it was',
  });
}
