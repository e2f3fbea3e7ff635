/**
 * Settling an install (or a follow swap) that a kill interrupted in its move phase. Such a change
 * leaves its intent record (util/fs/intent.ts) in the directory of its lock file; the next install
 * (and the follow agent at its start) finds it there before doing anything else and,
 * under the install locks of every directory the record names, completes or undoes the change, so
 * that each directory holds one version again and matches its lock file.
 */
import { resolve } from 'node:path';
import { readIntent, settleIntent, type SettledIntent } from '../util/index.js';
import { acquireDirLocks, type DirLockOptions } from './dir-lock.js';

export type { SettledIntent };

/**
 * Looks for an intent record in each of `dirs` (the directories a run is about to use: the lock
 * file's, the rules and plugins dirs...) and settles every one found, each under the locks of the
 * directories it names (waiting for a live holder as an install does: a record whose process still
 * runs is gone by the time its locks are free). Returns what was settled, in order; throws when a
 * record cannot be read or its change cannot be settled (the record is kept for the next try).
 */
export async function recoverInterruptedChanges(dirs: readonly string[], lockOpts: Pick<DirLockOptions, 'timeoutMs' | 'onWait'> = {}): Promise<SettledIntent[]> {
  const settled: SettledIntent[] = [];
  for (const dir of [...new Set(dirs.map((d) => resolve(d)))]) {
    const seen = await readIntent(dir);
    if (seen === undefined) continue;
    const locks = await acquireDirLocks([dir, ...seen.dirs], lockOpts);
    try {
      const done = await settleIntent(dir);
      if (done !== undefined) settled.push(done);
    } finally {
      await locks.release();
    }
  }
  return settled;
}
