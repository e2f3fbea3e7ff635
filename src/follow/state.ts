/**
 * What the follower remembers per ref, in the state dir, so that a restart downloads nothing that is
 * already installed and `artifact rollback` can put the previous version back:
 *
 *   <stateDir>/follow/<key>/state.json            ref -> current / previous version, last rejection
 *   <stateDir>/follow/<key>/versions/<hex>/...    a copy of the files of each kept version
 *
 * `<key>` is the ref made file-name safe plus a hash of it. Only the current and previous versions are
 * kept. state.json is written atomically (temp file, fsync, rename, fsync dir); a version dir is
 * filled under a temp name and renamed into place, so a crash never leaves a half copy that counts.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rename, stat } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import type { Dependency } from '../artifact/index.js';
import { DiginfraError, messageOf } from '../errors.js';
import { fsyncDir, removeDir, writeFileAtomic } from '../util/index.js';

export const STATE_VERSION = 1;

/** One installed version of a ref. */
export interface InstalledVersion {
  /** What the tag pointed at (manifest or image index digest): what a check compares. */
  digest: string;
  manifestDigest: string;
  name: string;
  version: string;
  type: string;
  /** The tag that was checked (`1.2.3` for the floating `1`); absent when pinned by digest. */
  tag?: string;
  /** Absolute directory the files were placed in. */
  dir: string;
  /** Files, relative to `dir`. */
  files: string[];
  /** File modes, by relative path (0644 rules files, 0755 plugins). */
  modes?: Record<string, number>;
  installedAt: string;
}

/** The last version that was not applied, so it is not downloaded again at every check. */
export interface Rejection {
  digest: string;
  version?: string;
  reason: string;
  message: string;
  at: string;
  /** For `requirements`: re-checked (without downloading) when the engine version changes. */
  requirements?: { name: string; version: string }[];
  /** The engine version the requirements were checked against. */
  engineVersion?: string;
  /** For `dependencies`: what the version needs, re-checked (without downloading) when what is installed changes. */
  dependencies?: Dependency[];
  /** What was installed when the dependencies were checked (signatureOf in dependencies.ts). */
  installed?: string;
  /** For `signature`: the digest of the `.sig` manifest then (`none`); a new signature earns another look. */
  signatures?: string;
  /** The settings that refused it (allowed types, validate command): a change earns another look. */
  key?: string;
}

export interface RefState {
  stateVersion: number;
  ref: string;
  current?: InstalledVersion;
  previous?: InstalledVersion;
  rejected?: Rejection;
  lastSuccess?: string;
}

/** `ghcr.io/a/b:1` -> `ghcr.io_a_b_1-<12 hex>`: a file name that is unique per ref. */
export function stateKey(ref: string): string {
  const safe = ref.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 80);
  const hash = createHash('sha256').update(ref).digest('hex').slice(0, 12);
  return `${safe || 'ref'}-${hash}`;
}

/** Directory name of a version copy: the digest's hex. */
function versionName(digest: string): string {
  const hex = digest.split(':')[1];
  if (!hex || !/^[a-f0-9]+$/.test(hex)) throw new DiginfraError('DIGEST_MISMATCH', `unsupported digest "${digest}"`);
  return hex;
}

export class StateStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, 'follow');
  }

  refDir(ref: string): string {
    return join(this.root, stateKey(ref));
  }

  statePath(ref: string): string {
    return join(this.refDir(ref), 'state.json');
  }

  versionDir(ref: string, digest: string): string {
    return join(this.refDir(ref), 'versions', versionName(digest));
  }

  /** The state of `ref`, or a fresh one when it was never followed (or its file is unreadable). */
  async read(ref: string): Promise<RefState> {
    let text: string;
    try {
      text = await readFile(this.statePath(ref), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { stateVersion: STATE_VERSION, ref };
      throw new DiginfraError('IO', `cannot read follow state ${this.statePath(ref)}: ${messageOf(err)}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as RefState;
      if (parsed && typeof parsed === 'object' && parsed.ref === ref) return parsed;
    } catch {
      // a corrupt file (cannot happen with atomic writes, but a disk can lie): start afresh
    }
    return { stateVersion: STATE_VERSION, ref };
  }

  /** The path and bytes `write(state)` writes: a swap's commit file (its intent record names them). */
  fileOf(state: RefState): { path: string; content: string } {
    return { path: this.statePath(state.ref), content: `${JSON.stringify(state, null, 2)}\n` };
  }

  async write(state: RefState): Promise<void> {
    const { path, content } = this.fileOf(state);
    try {
      await writeFileAtomic(path, content, { mode: 0o644 });
    } catch (err) {
      throw new DiginfraError('IO', `cannot write follow state ${this.statePath(state.ref)}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Every ref that has state (for `artifact rollback` without the config). */
  async refs(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      // Nothing followed yet; any other failure (a permission) is not "nothing".
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new DiginfraError('IO', `cannot read the follow state dir ${this.root}: ${messageOf(err)}`, { cause: err });
    }
    const out: string[] = [];
    for (const n of names) {
      try {
        const s = JSON.parse(await readFile(join(this.root, n, 'state.json'), 'utf8')) as RefState;
        if (typeof s.ref === 'string') out.push(s.ref);
      } catch {
        // not a ref dir
      }
    }
    return out.sort();
  }

  /** Does a complete copy of this version exist? */
  async hasVersion(ref: string, digest: string): Promise<boolean> {
    try {
      return (await stat(join(this.versionDir(ref, digest), '.complete'))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Copies `files` (relative to `fromDir`) into the version dir of `digest`, under a temp name first;
   * the `.complete` marker is written last. An existing complete copy is kept as is.
   */
  async saveVersion(ref: string, digest: string, fromDir: string, files: readonly string[]): Promise<void> {
    if (await this.hasVersion(ref, digest)) return;
    const final = this.versionDir(ref, digest);
    const tmp = `${final}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      for (const rel of files) {
        const to = join(tmp, rel);
        await mkdir(dirname(to), { recursive: true });
        await copyFile(join(fromDir, rel), to);
      }
      await writeFileAtomic(join(tmp, '.complete'), `${digest}\n`);
      await removeDir(final);
      await rename(tmp, final);
      await fsyncDir(dirname(final));
    } catch (err) {
      await removeDir(tmp);
      throw new DiginfraError('IO', `cannot keep a copy of ${ref} ${digest} in ${final}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Removes every version copy (and leftover temp copy) except those of `keep`. */
  async pruneVersions(ref: string, keep: readonly (string | undefined)[]): Promise<void> {
    const dir = join(this.refDir(ref), 'versions');
    const wanted = new Set(keep.filter((d): d is string => d !== undefined).map(versionName));
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names) if (!wanted.has(n)) await removeDir(join(dir, n));
  }
}

/** Do all these files (relative, inside `dir`) exist? A deleted file makes the follower install again. */
export async function filesPresent(dir: string, files: readonly string[]): Promise<boolean> {
  return files.length > 0 && (await missingFiles(dir, files)).length === 0;
}

/** The files (relative, inside `dir`) that are not regular files in place; a path leaving `dir` counts as missing. */
export async function missingFiles(dir: string, files: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const rel of files) {
    const n = normalize(rel);
    if (n.startsWith(`..${sep}`) || n === '..' || n.startsWith(sep)) {
      missing.push(rel);
      continue;
    }
    try {
      if (!(await stat(join(dir, n))).isFile()) missing.push(rel);
    } catch {
      missing.push(rel);
    }
  }
  return missing;
}
