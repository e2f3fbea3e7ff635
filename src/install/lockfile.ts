/**
 * `diginfractl.lock`: what an install placed and exactly where it came from, one entry per artifact
 * (keyed by artifact name). YAML, sorted by name, no timestamps: the same install gives the same file,
 * so it diffs cleanly in Git. `--frozen` installs the digests recorded here. docs/install.md
 * describes the format.
 */
import { readFile } from 'node:fs/promises';
import { DiginfraError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../util/index.js';

export { LOCKFILE_NAME, lockfilePath } from './lockfile-path.js';
export const LOCKFILE_VERSION = 1;

export interface LockEntry {
  name: string;
  type: string;
  version: string;
  /** The references the user typed that resolved to this artifact (normalized); none for a dependency only. */
  requested?: string[];
  /** The index that resolved a short name, when one did. */
  index?: string;
  registry: string;
  repository: string;
  /** The tag that was resolved (absent when installed by digest). */
  tag?: string;
  /** What the tag pointed at: the image index for a multi-platform artifact, else the manifest. */
  digest: string;
  /** The platform manifest installed (equal to `digest` for a single manifest). */
  manifestDigest: string;
  /** os/arch chosen from an image index. */
  platform?: string;
  /** Names of the artifacts that this one's dependencies resolved to. */
  dependencies?: string[];
  /** The directory the files went to. */
  dir: string;
  /** Files placed, relative to `dir`. */
  files: string[];
}

export interface Lockfile {
  version: number;
  artifacts: LockEntry[];
}

const HEADER = '# diginfractl.lock: written by `diginfractl artifact install`; commit it and use --frozen for reproducible installs.\n';

function invalid(path: string, why: string): DiginfraError {
  return new DiginfraError('LOCKFILE_MISMATCH', `lock file ${path} is not valid: ${why}`, {
    hint: 'restore it from version control, or delete it and install without --frozen to write a new one',
  });
}

function str(path: string, o: Record<string, unknown>, key: string, i: number, optional = false): string | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(path, `artifacts[${i}].${key} must be a non-empty string`);
  return v;
}

function strList(path: string, o: Record<string, unknown>, key: string, i: number): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalid(path, `artifacts[${i}].${key} must be a list of strings`);
  return v as string[];
}

/** Validates parsed YAML as a lock file. */
export function parseLockfile(raw: unknown, path: string): Lockfile {
  if (raw === null || raw === undefined) return { version: LOCKFILE_VERSION, artifacts: [] };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid(path, 'not a YAML mapping');
  const o = raw as Record<string, unknown>;
  if (o.version !== LOCKFILE_VERSION) throw invalid(path, `version ${String(o.version)} is not ${LOCKFILE_VERSION}`);
  if (o.artifacts !== undefined && o.artifacts !== null && !Array.isArray(o.artifacts)) throw invalid(path, '"artifacts" must be a list');
  const artifacts = ((o.artifacts as unknown[] | undefined) ?? []).map((item, i): LockEntry => {
    if (!item || typeof item !== 'object') throw invalid(path, `artifacts[${i}] must be a mapping`);
    const a = item as Record<string, unknown>;
    const requested = strList(path, a, 'requested', i);
    const dependencies = strList(path, a, 'dependencies', i);
    const index = str(path, a, 'index', i, true);
    const tag = str(path, a, 'tag', i, true);
    const platform = str(path, a, 'platform', i, true);
    return {
      name: str(path, a, 'name', i)!,
      type: str(path, a, 'type', i)!,
      version: str(path, a, 'version', i)!,
      ...(requested && requested.length > 0 && { requested }),
      ...(index !== undefined && { index }),
      registry: str(path, a, 'registry', i)!,
      repository: str(path, a, 'repository', i)!,
      ...(tag !== undefined && { tag }),
      digest: str(path, a, 'digest', i)!,
      manifestDigest: str(path, a, 'manifestDigest', i)!,
      ...(platform !== undefined && { platform }),
      ...(dependencies && dependencies.length > 0 && { dependencies }),
      dir: str(path, a, 'dir', i)!,
      files: strList(path, a, 'files', i) ?? [],
    };
  });
  const names = artifacts.map((a) => a.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw invalid(path, `artifact ${twice} appears twice`);
  return { version: LOCKFILE_VERSION, artifacts };
}

/** The lock file at `path`, or undefined when there is none. */
export async function readLockfile(path: string): Promise<Lockfile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DiginfraError('IO', `cannot read lock file ${path}: ${messageOf(err)}`, { cause: err });
  }
  const { parse } = await import('yaml');
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw invalid(path, messageOf(err));
  }
  return parseLockfile(raw, path);
}

/** The YAML text of a lock: entries sorted by name, keys in a fixed order. */
export async function formatLockfile(lock: Lockfile): Promise<string> {
  const { stringify } = await import('yaml');
  const artifacts = [...lock.artifacts].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((a) => ({
    name: a.name,
    type: a.type,
    version: a.version,
    ...(a.requested?.length && { requested: [...a.requested].sort() }),
    ...(a.index !== undefined && { index: a.index }),
    registry: a.registry,
    repository: a.repository,
    ...(a.tag !== undefined && { tag: a.tag }),
    digest: a.digest,
    manifestDigest: a.manifestDigest,
    ...(a.platform !== undefined && { platform: a.platform }),
    ...(a.dependencies?.length && { dependencies: [...a.dependencies].sort() }),
    dir: a.dir,
    files: [...a.files].sort(),
  }));
  return HEADER + stringify({ version: LOCKFILE_VERSION, artifacts }, { lineWidth: 0 });
}

/** Writes the lock atomically (temp file, fsync, rename). */
export async function writeLockfile(path: string, lock: Lockfile): Promise<void> {
  try {
    await writeFileAtomic(path, await formatLockfile(lock), { mode: 0o644 });
  } catch (err) {
    throw new DiginfraError('IO', `cannot write lock file ${path}: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * The lock after an install: new entries replace old ones of the same name (keeping the old
 * `requested` refs, so a plugin once asked for by hand and now also a dependency is still found by
 * the ref that asked for it); entries of other artifacts stay.
 */
export function mergeLock(previous: Lockfile | undefined, installed: readonly LockEntry[]): Lockfile {
  const byName = new Map<string, LockEntry>();
  for (const e of previous?.artifacts ?? []) byName.set(e.name, e);
  for (const e of installed) {
    const old = byName.get(e.name);
    const requested = [...new Set([...(old?.requested ?? []), ...(e.requested ?? [])])];
    // A ref now answered by this entry must not stay on another one.
    for (const other of byName.values()) {
      if (other.name !== e.name && other.requested) {
        const kept = other.requested.filter((r) => !(e.requested ?? []).includes(r));
        if (kept.length !== other.requested.length) byName.set(other.name, { ...other, ...(kept.length ? { requested: kept } : { requested: undefined }) });
      }
    }
    const { requested: _r, ...rest } = e;
    byName.set(e.name, { ...rest, ...(requested.length > 0 && { requested }) });
  }
  const artifacts = [...byName.values()].map((a) => {
    if (a.requested === undefined || a.requested.length > 0) return a;
    const { requested: _r, ...rest } = a;
    return rest;
  });
  return { version: LOCKFILE_VERSION, artifacts };
}

/** The entry a requested ref (normalized) was recorded under. */
export function findRequested(lock: Lockfile, requested: string): LockEntry | undefined {
  return lock.artifacts.find((a) => a.requested?.includes(requested));
}

/** The entries of `roots` and, transitively, the artifacts their dependencies resolved to. */
export function lockClosure(lock: Lockfile, roots: readonly LockEntry[], withDependencies: boolean): { entries: LockEntry[]; missing: string[] } {
  const byName = new Map(lock.artifacts.map((a) => [a.name, a]));
  const out: LockEntry[] = [];
  const missing: string[] = [];
  const queue = [...roots];
  while (queue.length > 0) {
    const e = queue.shift()!;
    if (out.includes(e)) continue;
    out.push(e);
    if (!withDependencies) continue;
    for (const dep of e.dependencies ?? []) {
      const d = byName.get(dep);
      if (d) queue.push(d);
      else missing.push(`${dep} (a dependency of ${e.name})`);
    }
  }
  return { entries: out, missing };
}
