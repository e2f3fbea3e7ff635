/**
 * Where the lock file is: its own module, without the lock file's parsing and writing, so that the
 * follow agent can find the lock file without loading them (it reads it only to check dependencies).
 */
import { join } from 'node:path';

export const LOCKFILE_NAME = 'diginfractl.lock';

/**
 * The lock file of installs into `rulesfilesDir`: `configured` (install.lockfile, --lockfile) when
 * set, else diginfractl.lock in that dir. `artifact install` writes it there; `artifact list` and
 * `artifact follow` look for it there.
 */
export function lockfilePath(rulesfilesDir: string, configured?: string): string {
  return configured ?? join(rulesfilesDir, LOCKFILE_NAME);
}
