/**
 * Moving staged files into their destination, one rename(2) per file: the engine reloads on any
 * change to its rules dirs, so each file appears complete (chmod'ed and fsynced first) and the
 * directories are fsynced after the renames: after a crash the disk holds the old file or the new
 * one, never a mix.
 */
import { chmod, lstat, mkdir, rename } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DiginfraError, messageOf } from '../../errors.js';
import { fsyncDirsDeepestFirst, fsyncFile } from './fsync.js';
import { sameContent } from './same-content.js';

export interface StagedFile {
  /** Path relative to the staging dir and to the destination (`/`-separated). */
  rel: string;
  /** Mode the placed file gets (0644 rules, 0755 plugins). */
  mode: number;
}

/**
 * Where a staged file comes `from` (in `stagingDir`) and goes `to` (in `destDir`, absolute), or
 * UNSAFE_ARCHIVE when `rel` would leave its dir.
 */
export function placement(stagingDir: string, destDir: string, rel: string): { from: string; to: string } {
  const parts = rel.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  const refuse = (): DiginfraError => new DiginfraError('UNSAFE_ARCHIVE', `refusing to place ${JSON.stringify(rel)} outside ${destDir}`);
  if (rel.includes('\0') || isAbsolute(rel) || parts.length === 0 || parts.includes('..')) throw refuse();
  const inside = parts.join(sep);
  const dest = resolve(destDir);
  const to = join(dest, inside);
  const back = relative(dest, to);
  if (back === '..' || back.startsWith(`..${sep}`)) throw refuse();
  return { from: join(stagingDir, inside), to };
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
  for (const file of files) {
    const { from, to } = placement(stagingDir, destDir, file.rel);
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
      throw new DiginfraError('IO', `cannot place ${to}: ${messageOf(err)}`, {
        cause: err,
        hint: placed.length
          ? `already placed (complete new files): ${placed.join(', ')}; every other file is unchanged`
          : 'no file was changed',
      });
    }
    touched.add(dirname(to));
    placed.push(file.rel);
  }
  await fsyncDirsDeepestFirst(touched);
  return { placed, unchanged };
}
