/**
 * `artifact rollback REF`: puts the previous version of a followed ref back, through the same staged,
 * renamed-per-file swap as an update, from the copy kept in the state dir. The version rolled back
 * from is recorded as rejected (reason `rollback`), so a running follower does not install it again;
 * the next version pushed (another digest) is installed as usual.
 */
import { resolve } from 'node:path';
import { DiginfraError } from '../errors.js';
import { acquireDirLocks } from '../install/index.js';
import { normalizeRef } from './refs.js';
import { StateStore, type InstalledVersion, type RefState } from './state.js';
import type { SwapResult } from './swap.js';

export interface RollbackResult {
  ref: string;
  from: InstalledVersion;
  to: InstalledVersion;
  swap: SwapResult;
}

/** The ref as the state dir knows it: exact, else normalized, else the one followed ref it names. */
export async function findStateRef(store: StateStore, ref: string): Promise<string> {
  const known = await store.refs();
  if (known.includes(ref)) return ref;
  let normalized: string | undefined;
  try {
    normalized = normalizeRef(ref);
  } catch {
    normalized = undefined;
  }
  if (normalized !== undefined && known.includes(normalized)) return normalized;
  throw new DiginfraError('NOT_FOUND', `"${ref}" has never been installed by artifact follow (state dir ${store.root})`, {
    hint: known.length > 0 ? `followed refs: ${known.join(', ')}` : 'check --state-dir (follow.stateDir)',
  });
}

export async function rollbackRef(store: StateStore, refText: string, opts: { lockTimeoutMs?: number } = {}): Promise<RollbackResult> {
  const ref = await findStateRef(store, refText);
  const state = await store.read(ref);
  const from = state.current;
  const to = state.previous;
  if (!from || !to) {
    throw new DiginfraError('NOT_FOUND', `${ref} has no previous version to roll back to${from ? ` (installed: ${from.version} only)` : ''}`, {
      hint: 'the follower keeps the version it replaced; a ref updated once has none yet',
    });
  }
  if (!(await store.hasVersion(ref, to.digest))) {
    throw new DiginfraError('IO', `the kept copy of ${ref} ${to.version} (${to.digest}) is missing from ${store.versionDir(ref, to.digest)}`);
  }
  const dir = resolve(to.dir);
  // Loaded here: the follow agent shares this module's chunk, and loads the swap code only for an update.
  const { removeDir, stageFromDir, swapFiles, sweepStaging } = await import('./swap.js');
  const staged = await stageFromDir(
    store.versionDir(ref, to.digest),
    to.files.map((rel) => ({ rel, mode: to.modes?.[rel] ?? (to.type === 'plugin' ? 0o755 : 0o644) })),
    dir,
  );
  try {
    const lock = await acquireDirLocks([dir], { timeoutMs: opts.lockTimeoutMs ?? 60_000 });
    try {
      // What a crash left in the dir goes first (never our own staging dir).
      await sweepStaging(dir, [staged.staging]);
      const now = await store.read(ref);
      if (now.current?.digest !== from.digest) {
        throw new DiginfraError('LOCKED', `${ref} changed while rolling back (now ${now.current?.version ?? 'nothing'}); nothing was done`, { hint: 'run the rollback again' });
      }
      const next: RefState = {
        ...now,
        current: { ...to, installedAt: new Date().toISOString() },
        previous: from,
        rejected: { digest: from.digest, version: from.version, reason: 'rollback', message: `rolled back to ${to.version} by artifact rollback`, at: new Date().toISOString() },
      };
      const swap = await swapFiles(staged, resolve(from.dir) === dir ? from.files : [], store.fileOf(next));
      return { ref, from, to, swap };
    } finally {
      await lock.release();
    }
  } finally {
    await removeDir(staged.staging);
  }
}
