/**
 * The install lock: `.diginfractl.lock` in each directory an install writes to, created with
 * `open(..., 'wx')` (O_CREAT|O_EXCL, atomic on local filesystems) and holding the owner's pid, host
 * and start time. A second install waits (polling) up to a timeout, then fails with LOCKED.
 *
 * A lock is stale, and taken over, when its owner is gone. The owner is judged by its pid only when
 * the pid means the same thing to us: same host AND same PID namespace (`/proc/self/ns/pid`).
 * Containers of one Kubernetes pod share the hostname but not the PID namespace, and each runs as
 * pid 1, so there a pid says nothing. Then:
 * - same host, same PID namespace: stale when the pid no longer exists, or when it is our own pid
 *   but the lock records another process start time (a dead process's pid that we now have; the
 *   same pid and start time is another lock of this very process, which is live);
 * - another host (e.g. an earlier pod sharing a hostPath), another PID namespace, or a lock that
 *   does not record its namespace where we have one (an older diginfractl): stale when the lock
 *   file was not refreshed for `staleMs` (a live holder touches it every `staleMs / 4`). This is
 *   slower to take over a dead owner's lock, never wrong about a live one;
 * - no owner in it (empty, not JSON, no pid): stale once it is `EMPTY_LOCK_GRACE_MS` old. A lock
 *   appears complete, by link() of a written and fsynced temp file, so only a crash, a full disk, or
 *   an older diginfractl (or a filesystem without hard links) writing in place for an instant, leaves
 *   one without an owner; nothing would ever refresh it.
 * A lock that could not be written (ENOSPC) is never left behind.
 */
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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
  /** When the lock was taken (ISO 8601). */
  startedAt: string;
  /** `readlink /proc/self/ns/pid` of the holder (e.g. `pid:[4026531836]`); absent where there is no /proc. */
  pidNs?: string;
  /** When the holder process started (ms since the epoch): tells a reused pid from the holder. */
  processStart?: number;
}

/** Two start times closer than this are the same process (the value is computed, not read). */
const START_TOLERANCE_MS = 2000;

/** A lock without an owner younger than this may be one being written in place right now. */
export const EMPTY_LOCK_GRACE_MS = 1000;

/** link() errors of filesystems without hard links: the lock is then written in place. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function readPidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** This process as a lock records it: its PID namespace and start time, computed once. */
const SELF: { pidNs: string | undefined; processStart: number } = {
  pidNs: readPidNamespace(),
  processStart: Math.round(Date.now() - process.uptime() * 1000),
};

/** What a lock taken now by this process records. */
export function currentOwner(): LockOwner {
  return {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    ...(SELF.pidNs !== undefined && { pidNs: SELF.pidNs }),
    processStart: SELF.processStart,
  };
}

/**
 * How `owner` can be judged from here: by its pid (same host and same PID namespace, both known or
 * both unknown), or only by the age of the lock file.
 */
export function judgedBy(owner: LockOwner | undefined): 'pid' | 'age' {
  if (!owner || owner.host !== hostname()) return 'age';
  if (owner.pidNs !== SELF.pidNs) return 'age';
  return 'pid';
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
      // empty or garbage: no owner (see isStale)
    }
    return { owner: undefined, text };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function isStale(path: string, owner: LockOwner | undefined, staleMs: number): Promise<boolean> {
  if (!owner) return olderThan(path, EMPTY_LOCK_GRACE_MS);
  if (judgedBy(owner) === 'pid') {
    // Our own pid: another lock of this process (live) unless it records another start time, in
    // which case it is a dead process's whose pid we now have.
    if (owner.pid === process.pid) return typeof owner.processStart === 'number' && Math.abs(owner.processStart - SELF.processStart) > START_TOLERANCE_MS;
    return !pidAlive(owner.pid);
  }
  return olderThan(path, staleMs);
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    const st = await stat(path);
    return Date.now() - st.mtimeMs > ms;
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

function lockError(path: string, err: unknown): DiginfraError {
  return new DiginfraError('IO', `cannot create the install lock ${path}: ${messageOf(err)}`, { cause: err });
}

/** Writes `owner` to a new file at `path` ('wx': never an existing one), fsynced; on failure, no file is left. */
async function writeNew(path: string, owner: LockOwner): Promise<void> {
  const fh = await open(path, 'wx', 0o644);
  try {
    await fh.writeFile(JSON.stringify(owner));
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true });
    throw err;
  }
  await fh.close();
}

/**
 * Creates the lock, complete from its first instant: the owner is written to a temp file beside it
 * (`.diginfractl.lock.tmp-<hex>`, a name the staging sweep removes if we crash), which is then
 * hard-linked to the lock's name (fails if a lock exists). False when another lock exists.
 */
async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  const temp = join(dirname(path), `.${DIR_LOCK_NAME}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await writeNew(temp, owner);
  } catch (err) {
    throw lockError(path, err);
  }
  try {
    await link(temp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code)) throw lockError(path, err);
  } finally {
    await rm(temp, { force: true });
  }
  try {
    await writeNew(path, owner);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockError(path, err);
  }
}

async function acquireOne(dir: string, opts: Required<Omit<DirLockOptions, 'onWait'>> & Pick<DirLockOptions, 'onWait'>, deadline: number): Promise<string> {
  const path = join(dir, DIR_LOCK_NAME);
  const owner = currentOwner();
  let told = false;
  for (;;) {
    // Look first: creating the lock writes and fsyncs a temp file, not worth doing on every poll.
    const seen = await readOwner(path);
    if (seen === undefined) {
      if (await tryCreate(path, owner)) return path;
      continue; // taken between our read and link
    }
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
