/**
 * What is installed on this node, for `artifact list`: every entry of install's lock files, and the
 * current version of every ref `artifact follow` keeps (its state dir), each with the files that are
 * no longer in place and, for a followed ref, the last version it refused. Reads local files only.
 * It lives in follow because it knows both: follow may read install's lock files, install never
 * imports follow.
 */
import { resolve } from 'node:path';
import { readLockfile, type LockEntry } from '../install/index.js';
import { missingFiles, StateStore, type RefState } from './state.js';

export interface InventoryItem {
  /** Who placed it: `artifact install` (a lock file) or `artifact follow` (its state dir). */
  source: 'install' | 'follow';
  /** Absent for a followed ref that never installed a version (only refused ones). */
  name?: string;
  type?: string;
  version?: string;
  /** install: `registry/repository[:tag]@digest`; follow: the ref as followed. */
  ref: string;
  digest?: string;
  platform?: string;
  dir?: string;
  /** Absolute paths. */
  files: string[];
  /** Of those, the ones not in place (deleted or replaced by something that is not a file). */
  missing: string[];
  /** install: the lock file that records it, and the refs the user asked for (none: a dependency). */
  lockfile?: string;
  requested?: string[];
  /**
   * install: files of this entry that a followed ref has since placed (the chart's init container
   * installs what the follower then keeps current): their content is follow's version, not this one.
   */
  replacedBy?: { ref: string; version?: string; files: string[] };
  /** follow: when it installed this version, what it replaced, what it refused last (its metrics tell when it last checked). */
  installedAt?: string;
  previous?: { version: string; digest: string };
  rejected?: { version?: string; digest: string; reason: string; message: string; at: string };
}

export interface Inventory {
  items: InventoryItem[];
  /** The lock files looked at, and whether each exists. */
  lockfiles: { path: string; found: boolean }[];
  stateDir: string;
}

/** Absolute paths of `files` (relative to `dir`), and those of them not in place. */
async function filesIn(dir: string, files: readonly string[]): Promise<Pick<InventoryItem, 'files' | 'missing'>> {
  return { files: files.map((f) => resolve(dir, f)), missing: (await missingFiles(dir, files)).map((f) => resolve(dir, f)) };
}

async function fromLock(e: LockEntry, lockfile: string): Promise<InventoryItem> {
  const dir = resolve(e.dir);
  return {
    source: 'install',
    name: e.name,
    type: e.type,
    version: e.version,
    ref: `${e.registry}/${e.repository}${e.tag !== undefined ? `:${e.tag}` : ''}@${e.digest}`,
    digest: e.digest,
    ...(e.platform !== undefined && { platform: e.platform }),
    dir,
    ...(await filesIn(dir, e.files)),
    lockfile,
    requested: e.requested ?? [],
  };
}

async function fromState(s: RefState): Promise<InventoryItem> {
  const c = s.current;
  const dir = c && resolve(c.dir);
  return {
    source: 'follow',
    ...(c && { name: c.name, type: c.type, version: c.version, digest: c.digest, dir, installedAt: c.installedAt }),
    ref: s.ref,
    ...(c && dir ? await filesIn(dir, c.files) : { files: [], missing: [] }),
    ...(s.previous && { previous: { version: s.previous.version, digest: s.previous.digest } }),
    ...(s.rejected && {
      rejected: {
        ...(s.rejected.version !== undefined && { version: s.rejected.version }),
        digest: s.rejected.digest,
        reason: s.rejected.reason,
        message: s.rejected.message,
        at: s.rejected.at,
      },
    }),
  };
}

/**
 * Reads the lock files (those that exist; a broken one is an error naming it) and the follow state
 * dir (absent: nothing followed). Items are sorted by source, then name, then ref.
 */
export async function readInventory(opts: { lockfiles: readonly string[]; stateDir: string }): Promise<Inventory> {
  const items: InventoryItem[] = [];
  const lockfiles: Inventory['lockfiles'] = [];
  for (const path of [...new Set(opts.lockfiles.map((p) => resolve(p)))]) {
    const lock = await readLockfile(path);
    lockfiles.push({ path, found: lock !== undefined });
    for (const e of lock?.artifacts ?? []) items.push(await fromLock(e, path));
  }
  const store = new StateStore(resolve(opts.stateDir));
  const followed: InventoryItem[] = [];
  for (const ref of await store.refs()) followed.push(await fromState(await store.read(ref)));
  for (const item of items) {
    for (const f of followed) {
      const shared = item.files.filter((file) => f.files.includes(file));
      if (shared.length > 0) item.replacedBy = { ref: f.ref, ...(f.version !== undefined && { version: f.version }), files: shared };
    }
  }
  items.push(...followed);
  const key = (i: InventoryItem) => `${i.source === 'install' ? 0 : 1}\0${i.name ?? '\uffff'}\0${i.ref}`;
  items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return { items, lockfiles, stateDir: resolve(opts.stateDir) };
}
