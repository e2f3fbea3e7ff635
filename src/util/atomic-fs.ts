/**
 * Writes that a reader never sees half done. The engine reloads on any change to its rules dirs, so
 * every file appears by ONE rename of a complete, fsynced file in the same directory, under a
 * temporary name the engine ignores (dot-prefixed, never `*.yaml`). After the renames the directories
 * are fsynced too, so after a crash the disk holds the old file or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
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
 * are the old ones, and the error names the file that failed and those already placed.
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
