/**
 * Staging dirs: new content is written in `<dest>/.diginfractl-staging-<random>` and moved out of it
 * by rename. Inside the destination, so on the same filesystem; dot-named, so the engine never loads
 * what is inside. What a crashed run left behind is swept under the dir's install lock.
 */
import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DiginfraError, messageOf } from '../../errors.js';
import { ATOMIC_TEMP_RE } from './write-atomic.js';

/** Prefix of staging dirs: dot-named, so the engine never loads what is inside. */
export const STAGING_PREFIX = '.diginfractl-staging-';

/** Default age after which a staging dir (or temp file) is taken for a crash's leftover: 10 minutes. */
export const STALE_STAGING_MS = 10 * 60 * 1000;

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
    throw new DiginfraError('IO', `cannot create a staging directory in ${destDir}: ${messageOf(err)}`, {
      cause: err,
      hint: `check that ${destDir} is a writable directory`,
    });
  }
}

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
    throw new DiginfraError('IO', `cannot remove ${dir}: ${messageOf(err)}`, { cause: err, hint: `remove ${dir} by hand` });
  }
}
