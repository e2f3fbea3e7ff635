/**
 * The intent record of a change in progress: before the first file of a multi-file change is renamed
 * in, what is replaced by what is written down (atomically) beside the change; when the change is
 * over (done or undone), the record goes. A record that is still there names a change a killed
 * process left half done, and settleIntent makes the directories one version again: forward when the
 * change had been committed (its commit file holds the new bytes: the lock file that records it),
 * back otherwise. The caller holds the install locks of every directory the record names.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { chmod, lstat, mkdir, readFile, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { DiginfraError, messageOf } from '../../errors.js';
import { fsyncDir, fsyncDirsDeepestFirst, fsyncFile } from './fsync.js';
import { STAGING_PREFIX } from './staging.js';
import { writeFileAtomic } from './write-atomic.js';

/** The record's name in its directory: dot-named (the engine never loads it), one per directory. */
export const INTENT_NAME = '.diginfractl-intent.json';

const INTENT_VERSION = 1;

/** One change of the record, in the order they are applied. */
export type IntentChange =
  /** `from` (in a staging dir) renamed to `to`; the file `to` held before is kept at `backup`. */
  | { op: 'place'; from: string; to: string; mode: number; backup?: string }
  /** `path`, already holding the new bytes, gets `mode` (it had `oldMode`). */
  | { op: 'chmod'; path: string; mode: number; oldMode: number }
  /** `path` is removed by renaming it to `backup`. */
  | { op: 'remove'; path: string; backup: string };

export interface IntentRecord {
  version: number;
  /** Who wrote it, for messages. */
  pid: number;
  host: string;
  startedAt: string;
  /** Every directory the change writes in (absolute): their install locks guard it. */
  dirs: string[];
  changes: IntentChange[];
  /** Directories the change creates (parents of new files), removed again when it is undone and they are empty. */
  newDirs: string[];
  /** Staging and backup dirs: removed once the change is settled. */
  scratch: string[];
  /** The change counts as made once this file holds bytes of this sha256 (hex). */
  commit?: { path: string; sha256: string };
}

/** What settleIntent did. */
export interface SettledIntent {
  outcome: 'completed' | 'rolled-back';
  /** The record as the interrupted process wrote it. */
  record: IntentRecord;
}

export function intentPath(dir: string): string {
  return join(resolve(dir), INTENT_NAME);
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A new record for `changes` (pid, host and time of this process). */
export function newIntent(fields: Pick<IntentRecord, 'dirs' | 'changes' | 'newDirs' | 'scratch' | 'commit'>): IntentRecord {
  return { version: INTENT_VERSION, pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), ...fields };
}

/** Writes the record into `dir` atomically (fsynced, as the renames it announces must not overtake it). */
export async function writeIntent(dir: string, record: IntentRecord): Promise<void> {
  await writeFileAtomic(intentPath(dir), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

/** Removes the record of `dir` once its change is over, durably. */
export async function removeIntent(dir: string): Promise<void> {
  await rm(intentPath(dir), { force: true });
  await fsyncDir(resolve(dir));
}

function unreadable(path: string, why: string, cause?: unknown): DiginfraError {
  return new DiginfraError('IO', `the record of an interrupted install, ${path}, cannot be used: ${why}`, {
    ...(cause !== undefined && { cause }),
    hint: `an install was killed while moving files; check the directories it names and the lock file by hand, then delete ${path}`,
  });
}

/** Whether `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** The record's paths all stay inside its dirs, and scratch entries are staging dirs: nothing else is ever touched. */
function checkRecord(path: string, raw: unknown): IntentRecord {
  const r = raw as IntentRecord;
  if (!r || typeof r !== 'object' || r.version !== INTENT_VERSION || !Array.isArray(r.dirs) || !Array.isArray(r.changes) || !Array.isArray(r.newDirs) || !Array.isArray(r.scratch)) {
    throw unreadable(path, `not a version ${INTENT_VERSION} record`);
  }
  const dirs = r.dirs.map(String);
  if (dirs.some((d) => !isAbsolute(d))) throw unreadable(path, 'a directory is not absolute');
  const inside = (p: unknown): boolean => typeof p === 'string' && isAbsolute(p) && resolve(p) === p && dirs.some((d) => within(p, d) && p !== d);
  for (const c of r.changes) {
    const paths = c.op === 'place' ? [c.from, c.to, ...(c.backup !== undefined ? [c.backup] : [])] : c.op === 'remove' ? [c.path, c.backup] : c.op === 'chmod' ? [c.path] : [undefined];
    if (!paths.every(inside)) throw unreadable(path, `a change (${JSON.stringify(c)}) leaves the directories the record names`);
  }
  if (!r.newDirs.every(inside)) throw unreadable(path, 'a new directory is outside the directories the record names');
  if (!r.scratch.every((s) => inside(s) && basename(s).startsWith(STAGING_PREFIX))) {
    throw unreadable(path, 'a scratch entry is not a staging dir');
  }
  if (r.commit !== undefined && (!inside(r.commit.path) || typeof r.commit.sha256 !== 'string')) throw unreadable(path, 'its commit file is outside its directories');
  return r;
}

/** The record left in `dir`, or undefined when there is none. */
export async function readIntent(dir: string): Promise<IntentRecord | undefined> {
  const path = intentPath(dir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(path, messageOf(err), err);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw unreadable(path, 'not JSON', err);
  }
  return checkRecord(path, raw);
}

async function entry(path: string): Promise<import('node:fs').Stats | undefined> {
  return lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw err;
  });
}

/** Whether the commit file holds the new bytes: the change was made, only its cleanup is missing. */
async function committed(record: IntentRecord): Promise<boolean> {
  if (record.commit === undefined) return false;
  const bytes = await readFile(record.commit.path).catch(() => undefined);
  return bytes !== undefined && sha256Hex(bytes) === record.commit.sha256;
}

/** Completes every change not yet made: files still in staging are renamed in, removals done, modes set. */
async function rollForward(record: IntentRecord, touched: Set<string>): Promise<void> {
  for (const c of record.changes) {
    if (c.op === 'place') {
      if ((await entry(c.from)) === undefined) continue; // already renamed in
      await chmod(c.from, c.mode);
      await fsyncFile(c.from);
      await mkdir(dirname(c.to), { recursive: true });
      await rename(c.from, c.to);
      touched.add(dirname(c.to));
    } else if (c.op === 'chmod') {
      if ((await entry(c.path))?.isFile()) await chmod(c.path, c.mode);
    } else {
      const st = await entry(c.path);
      if (st !== undefined && !st.isDirectory()) await rm(c.path, { force: true });
      touched.add(dirname(c.path));
    }
  }
}

/** Undoes every change made, newest first: backups renamed back, new files deleted, modes and removals restored. */
async function rollBack(record: IntentRecord, touched: Set<string>): Promise<void> {
  for (const c of [...record.changes].reverse()) {
    if (c.op === 'place') {
      if (c.backup !== undefined) {
        // Before the new file's rename, the backup is a second link to the same file: renaming it
        // back changes nothing then, and the scratch removal drops it.
        if ((await entry(c.backup)) !== undefined) await rename(c.backup, c.to);
      } else if ((await entry(c.from)) === undefined) {
        const st = await entry(c.to);
        if (st !== undefined && !st.isDirectory()) await rm(c.to, { force: true });
      }
      touched.add(dirname(c.to));
    } else if (c.op === 'chmod') {
      if ((await entry(c.path))?.isFile()) await chmod(c.path, c.oldMode);
    } else {
      if ((await entry(c.backup)) !== undefined && (await entry(c.path)) === undefined) await rename(c.backup, c.path);
      touched.add(dirname(c.path));
    }
  }
  for (const d of [...record.newDirs].sort((a, b) => b.length - a.length)) {
    await rmdir(d).then(
      () => touched.add(dirname(d)),
      () => undefined, // not empty (someone else's files) or gone: keep it
    );
  }
}

/**
 * Settles the change whose record is left in `dir`, if any: completes it when its commit file holds
 * the new bytes, else undoes it, so every directory holds one version (the one the lock file
 * records). Then the staging and backup dirs and the record are removed. The caller holds the
 * install locks of the record's dirs (readIntent first to learn them). A failure throws IO and keeps
 * the record, so the next run tries again. Returns what was done, or undefined without a record.
 */
export async function settleIntent(dir: string): Promise<SettledIntent | undefined> {
  const record = await readIntent(dir);
  if (record === undefined) return undefined;
  const forward = await committed(record);
  const touched = new Set<string>();
  try {
    if (forward) await rollForward(record, touched);
    else await rollBack(record, touched);
    await fsyncDirsDeepestFirst(touched);
    for (const s of record.scratch) await rm(s, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    throw new DiginfraError('IO', `cannot ${forward ? 'complete' : 'undo'} the install interrupted at ${record.startedAt} (pid ${record.pid} on ${record.host}): ${messageOf(err)}`, {
      cause: err,
      hint: `fix the cause and run the install again; what it does is recorded in ${intentPath(dir)}`,
    });
  }
  await removeIntent(dir);
  return { outcome: forward ? 'completed' : 'rolled-back', record };
}
