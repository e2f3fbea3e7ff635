/**
 * Writes that a reader never sees half done. The engine reloads on any change to its rules dirs, so
 * every file appears by one rename of a complete, fsynced file in the same directory, under a
 * temporary name the engine ignores (dot-prefixed, not `*.yaml`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DiginfraError } from '../errors.js';

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
}

/** fsync of a directory, so a rename in it survives a crash. Some filesystems refuse; that is fine. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
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

/** Temp file beside `path`, written, fsynced, chmod'ed, renamed over `path`; the dir fsynced. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    const fh = await open(tmp, 'wx', opts.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.mode !== undefined) await chmod(tmp, opts.mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new DiginfraError('IO', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  await fsyncDir(dirname(path));
}

async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** True when both files exist with the same bytes. Streams; never reads a whole file into memory. */
export async function sameContent(a: string, b: string): Promise<boolean> {
  let sa, sb;
  try {
    [sa, sb] = await Promise.all([stat(a), stat(b)]);
  } catch {
    return false;
  }
  if (!sa.isFile() || !sb.isFile() || sa.size !== sb.size) return false;
  const [ha, hb] = await Promise.all([fileHash(a), fileHash(b)]);
  return ha === hb;
}

/** A staging dir inside `destDir` (same filesystem, so renames out of it are atomic). */
export async function makeStagingDir(destDir: string): Promise<string> {
  await mkdir(destDir, { recursive: true });
  return mkdtemp(join(destDir, '.diginfractl-staging-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface StagedFile {
  /** Path relative to the staging dir and to the destination. */
  rel: string;
  mode: number;
}

/**
 * Moves staged files into `destDir`, one rename each, after fsyncing them; fsyncs the directories
 * touched. With `skipIdentical`, a destination that already has the same bytes is left alone (a
 * rename would make the engine reload for nothing). A failure midway leaves every destination file
 * either old or new, never partial; the error names the file.
 */
export async function placeFiles(
  stagingDir: string,
  files: readonly StagedFile[],
  destDir: string,
  opts: { skipIdentical: boolean },
): Promise<{ placed: string[]; unchanged: string[] }> {
  const placed: string[] = [];
  const unchanged: string[] = [];
  const dirs = new Set<string>();
  for (const file of files) {
    const from = join(stagingDir, file.rel);
    const to = join(destDir, file.rel);
    if (relative(destDir, to).startsWith(`..${sep}`) || relative(destDir, to) === '..') {
      throw new DiginfraError('UNSAFE_ARCHIVE', `refusing to place ${file.rel} outside ${destDir}`);
    }
    if (opts.skipIdentical && (await sameContent(from, to))) {
      const current = await stat(to);
      if ((current.mode & 0o7777) !== file.mode) await chmod(to, file.mode);
      unchanged.push(file.rel);
      continue;
    }
    try {
      await chmod(from, file.mode);
      await fsyncFile(from);
      await mkdir(dirname(to), { recursive: true });
      await rename(from, to);
    } catch (err) {
      throw new DiginfraError('IO', `cannot place ${to}: ${(err as Error).message}`, {
        cause: err,
        hint: placed.length ? `already placed: ${placed.join(', ')}` : 'no file was changed',
      });
    }
    dirs.add(dirname(to));
    placed.push(file.rel);
  }
  for (const dir of dirs) await fsyncDir(dir);
  return { placed, unchanged };
}

