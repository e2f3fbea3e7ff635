/** Umask and tree snapshots shared by the util/fs tests. */
import { lstat, readdir, readFile, readlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';

export async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

/** Every entry under `dir` (dirs with a trailing /), with type, mode, inode and bytes: the exact state. */
export async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, prefix: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = await lstat(p);
      const rel = `${prefix}${e.name}`;
      if (e.isDirectory()) {
        out[`${rel}/`] = `dir ${(st.mode & 0o7777).toString(8)}`;
        await walk(p, `${rel}/`);
      } else if (e.isSymbolicLink()) out[rel] = `link -> ${await readlink(p)}`;
      else out[rel] = `file ${(st.mode & 0o7777).toString(8)} ino ${st.ino} ${(await readFile(p)).toString('hex')}`;
    }
  };
  await walk(dir, '');
  return out;
}

export async function age(path: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  await utimes(path, t, t);
}
