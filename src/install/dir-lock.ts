/**
 * The install lock: `.diginfractl.lock` in each directory an install writes to, created with
 * `open(..., 'wx')` (O_CREAT|O_EXCL, atomic on local filesystems) and holding the owner's pid, host
 * and start time. A second install waits (polling) up to a timeout, then fails with LOCKED.
 *
 * A lock is stale, and taken over, when its owner is gone: on the same host, a pid that no longer
 * exists; from another host (e.g. an earlier pod sharing a hostPath), a lock file not refreshed for
 * `staleMs` (the holder touches it every `staleMs / 4`).
 */
import { link, mkdir, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiginfraError, messageOf } from '../errors.js';

export const DIR_LOCK_NAME = '.diginfractl.lock';

export interface DirLockOptions {
  /** How long to wait for another install to finish (default 60 s). */
  timeoutMs?: number;
  /** Poll interval while waiting (default 100 ms). */
  pollMs?: number;
  /** Age after which a foreign host's lock counts as abandoned (default 2 min). */
  staleMs?: number;
  /** Told once when the lock is held by someone else and we start waiting. */
  onWait?: (dir: string, holder: LockOwner | undefined) => void;
}

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export interface HeldLocks {
  dirs: string[];
  release(): Promise<void>;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(path: string): Promise<{ owner: LockOwner | undefined; text: string } | undefined> {
  try {
    const text = await readFile(path, 'utf8');
    try {
      const o = JSON.parse(text) as Partial<LockOwner>;
      if (typeof o.pid === 'number' && typeof o.host === 'string') return { owner: o as LockOwner, text };
    } catch {
      // a lock being written right now, or garbage: judged by age below
    }
    return { owner: undefined, text };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function isStale(path: string, owner: LockOwner | undefined, staleMs: number): Promise<boolean> {
  if (owner && owner.host === hostname()) return owner.pid !== process.pid && !pidAlive(owner.pid);
  try {
    const st = await stat(path);
    return Date.now() - st.mtimeMs > staleMs;
  } catch {
    return false;
  }
}

/**
 * Takes a stale lock away: renames it aside, and if what was renamed is not the lock we judged stale
 * (someone replaced it meanwhile), puts it back with link() (which fails if a new lock exists).
 */
async function breakStale(path: string, judged: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await rename(path, aside);
  } catch {
    return;
  }
  try {
    const text = await readFile(aside, 'utf8');
    if (text !== judged) await link(aside, path).catch(() => undefined);
  } finally {
    await rm(aside, { force: true });
  }
}

async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  try {
    const fh = await open(path, 'wx', 0o644);
    try {
      await fh.writeFile(JSON.stringify(owner));
      await fh.sync();
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DiginfraError('IO', `cannot create the install lock ${path}: ${messageOf(err)}`, { cause: err });
  }
}

async function acquireOne(dir: string, opts: Required<Omit<DirLockOptions, 'onWait'>> & Pick<DirLockOptions, 'onWait'>, deadline: number): Promise<string> {
  const path = join(dir, DIR_LOCK_NAME);
  const owner: LockOwner = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  let told = false;
  for (;;) {
    if (await tryCreate(path, owner)) return path;
    const seen = await readOwner(path);
    if (seen === undefined) continue; // released between our open and read
    if (await isStale(path, seen.owner, opts.staleMs)) {
      await breakStale(path, seen.text);
      continue;
    }
    if (!told) {
      opts.onWait?.(dir, seen.owner);
      told = true;
    }
    if (Date.now() >= deadline) {
      const who = seen.owner ? `pid ${seen.owner.pid} on ${seen.owner.host}, since ${seen.owner.startedAt}` : 'another process';
      throw new DiginfraError('LOCKED', `${dir} is locked by another install (${who}); gave up after ${Math.round(opts.timeoutMs / 1000)} s`, {
        hint: `wait for the other install to finish; if none is running, remove ${path}`,
      });
    }
    await sleep(opts.pollMs);
  }
}

/**
 * Locks every directory (created if missing), in sorted order so that two installs never wait on each
 * other in a cycle. On failure, the locks taken so far are released.
 */
export async function acquireDirLocks(dirs: readonly string[], options: DirLockOptions = {}): Promise<HeldLocks> {
  const opts = { timeoutMs: options.timeoutMs ?? 60_000, pollMs: options.pollMs ?? 100, staleMs: options.staleMs ?? 120_000, onWait: options.onWait };
  const unique = [...new Set(dirs.map((d) => resolve(d)))].sort();
  const deadline = Date.now() + opts.timeoutMs;
  const held: string[] = [];
  const release = async (): Promise<void> => {
    clearInterval(timer);
    for (const path of held.splice(0).reverse()) await rm(path, { force: true });
  };
  const timer = setInterval(() => {
    const now = new Date();
    for (const path of held) void utimes(path, now, now).catch(() => undefined);
  }, Math.max(opts.staleMs / 4, 1000));
  timer.unref();
  try {
    for (const dir of unique) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        throw new DiginfraError('IO', `cannot create ${dir}: ${messageOf(err)}`, { cause: err });
      }
      held.push(await acquireOne(dir, opts, deadline));
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { dirs: unique, release };
}
