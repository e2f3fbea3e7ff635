import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiginfraError } from '../../src/errors.js';
import { fsyncDir, makeStagingDir, placeFileSets, placeFiles, removeDir, sameContent, sweepStaleStaging, writeFileAtomic } from '../../src/util/atomic-fs.js';
import { tempDir } from '../helpers/fs.js';

async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

describe('writeFileAtomic', () => {
  it('replaces a file with the mode asked and leaves no temp file', async () => {
    const dir = await tempDir('atomic-');
    const file = join(dir, 'config.json');
    await writeFile(file, 'old', { mode: 0o644 });
    await writeFileAtomic(file, 'new', { mode: 0o600 });
    expect(await readFile(file, 'utf8')).toBe('new');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('creates missing parents, writes bytes, and gives 0644 by default whatever the umask', async () => {
    const dir = await tempDir('atomic-');
    const file = join(dir, 'a', 'b', 'data.bin');
    await withUmask(0o077, () => writeFileAtomic(file, new Uint8Array([0, 1, 2, 255])));
    expect([...(await readFile(file))]).toEqual([0, 1, 2, 255]);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it('fails with the path named and leaves no temp file behind', async () => {
    const dir = await tempDir('atomic-');
    const target = join(dir, 'rules.yaml');
    // A non-empty directory where the file should go: the final rename must fail.
    await mkdir(join(target, 'inner'), { recursive: true });
    const err = await writeFileAtomic(target, 'new').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiginfraError);
    expect((err as DiginfraError).code).toBe('IO');
    expect((err as DiginfraError).message).toContain(`cannot write ${target}`);
    expect(await readdir(dir)).toEqual(['rules.yaml']);
    expect(await readdir(target)).toEqual(['inner']);
  });

  it('never shows a reader a partial file', async () => {
    const dir = await tempDir('atomic-');
    const file = join(dir, 'rules.yaml');
    const a = 'a'.repeat(2 * 1024 * 1024);
    const b = 'b'.repeat(3 * 1024 * 1024);
    await writeFileAtomic(file, a);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 15; i++) await writeFileAtomic(file, i % 2 ? a : b);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const text = await readFile(file, 'utf8');
      expect(text === a || text === b).toBe(true);
      reads++;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
    expect(await readdir(dir)).toEqual(['rules.yaml']);
  });

  it('uses a dot-named temp file in the same directory (never *.yaml)', async () => {
    const dir = await tempDir('atomic-');
    const file = join(dir, 'rules.yaml');
    // Make the rename fail after the temp file exists, and catch its name on the way out.
    await mkdir(join(file, 'x'), { recursive: true });
    const { watch } = await import('node:fs');
    const names: string[] = [];
    const watcher = watch(dir, (_ev, name) => name && names.push(String(name)));
    await writeFileAtomic(file, 'x').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    watcher.close();
    const temps = names.filter((n) => n !== 'rules.yaml');
    expect(temps.length).toBeGreaterThan(0);
    for (const n of temps) {
      expect(n).toMatch(/^\.rules\.yaml\.tmp-[0-9a-f]+$/);
      expect(n.endsWith('.yaml')).toBe(false);
    }
  });
});

describe('fsyncDir', () => {
  it('syncs a directory and names a missing one', async () => {
    const dir = await tempDir('fsync-');
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
    await expect(fsyncDir(join(dir, 'missing'))).rejects.toMatchObject({ code: 'IO', message: expect.stringContaining(join(dir, 'missing')) });
  });
});

describe('sameContent', () => {
  it('compares bytes, not names or times', async () => {
    const dir = await tempDir('same-');
    await writeFile(join(dir, 'a'), 'x'.repeat(100_000));
    await writeFile(join(dir, 'b'), 'x'.repeat(100_000));
    await writeFile(join(dir, 'c'), `${'x'.repeat(99_999)}y`);
    await writeFile(join(dir, 'd'), 'x'.repeat(100_001));
    expect(await sameContent(join(dir, 'a'), join(dir, 'b'))).toBe(true);
    expect(await sameContent(join(dir, 'a'), join(dir, 'c'))).toBe(false);
    expect(await sameContent(join(dir, 'a'), join(dir, 'd'))).toBe(false);
    expect(await sameContent(join(dir, 'a'), join(dir, 'missing'))).toBe(false);
    expect(await sameContent(join(dir, 'missing'), join(dir, 'a'))).toBe(false);
    expect(await sameContent(join(dir, 'a'), join(dir, 'a'))).toBe(true);
  });

  it('says false for directories and empty files are equal', async () => {
    const dir = await tempDir('same-');
    await mkdir(join(dir, 'd1'));
    await mkdir(join(dir, 'd2'));
    await writeFile(join(dir, 'e1'), '');
    await writeFile(join(dir, 'e2'), '');
    expect(await sameContent(join(dir, 'd1'), join(dir, 'd2'))).toBe(false);
    expect(await sameContent(join(dir, 'e1'), join(dir, 'e2'))).toBe(true);
  });

  it('compares large files in constant memory, finding a difference in the last byte', async () => {
    const dir = await tempDir('same-');
    const size = 48 * 1024 * 1024;
    const big = Buffer.alloc(size, 0x5a);
    await writeFile(join(dir, 'a'), big);
    await writeFile(join(dir, 'b'), big);
    big[size - 1] = 0;
    await writeFile(join(dir, 'c'), big);
    const before = process.memoryUsage();
    expect(await sameContent(join(dir, 'a'), join(dir, 'b'))).toBe(true);
    expect(await sameContent(join(dir, 'a'), join(dir, 'c'))).toBe(false);
    const after = process.memoryUsage();
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(8 * 1024 * 1024);
  });
});

describe('makeStagingDir / removeDir', () => {
  it('makes a dot-named 0700 dir inside the destination (created when missing), and removes trees', async () => {
    const root = await tempDir('staging-');
    const dest = join(root, 'rules.d');
    const staging = await makeStagingDir(dest);
    expect(join(staging, '..')).toBe(dest);
    expect(basename(staging)).toMatch(/^\.diginfractl-staging-.+$/);
    expect(basename(staging).endsWith('.yaml')).toBe(false);
    expect((await stat(staging)).mode & 0o777).toBe(0o700);
    expect(await readdir(staging)).toEqual([]);
    const second = await makeStagingDir(dest);
    expect(second).not.toBe(staging);
    await mkdir(join(staging, 'a', 'b'), { recursive: true });
    await writeFile(join(staging, 'a', 'b', 'f.yaml'), 'x');
    await removeDir(staging);
    await removeDir(staging); // already gone: fine
    expect(existsSync(staging)).toBe(false);
    expect(await readdir(dest)).toEqual([basename(second)]);
  });

  it('names the destination when it cannot be created', async () => {
    const root = await tempDir('staging-');
    await writeFile(join(root, 'file'), '');
    await expect(makeStagingDir(join(root, 'file', 'sub'))).rejects.toMatchObject({ code: 'IO', message: expect.stringContaining(join(root, 'file', 'sub')) });
  });
});

describe('placeFiles', () => {
  it('moves staged files in, skips identical ones, and sets modes', async () => {
    const dest = await tempDir('place-');
    await writeFile(join(dest, 'same.yaml'), 'same\n', { mode: 0o600 });
    await writeFile(join(dest, 'changed.yaml'), 'v1\n');
    const staging = await makeStagingDir(dest);
    expect(staging.startsWith(join(dest, '.diginfractl-staging-'))).toBe(true);
    await writeFile(join(staging, 'same.yaml'), 'same\n');
    await writeFile(join(staging, 'changed.yaml'), 'v2\n');
    await writeFile(join(staging, 'new.so'), 'ELF');
    const sameIno = (await stat(join(dest, 'same.yaml'))).ino;
    const stagedIno = (await stat(join(staging, 'changed.yaml'))).ino;
    const result = await placeFiles(
      staging,
      [
        { rel: 'same.yaml', mode: 0o644 },
        { rel: 'changed.yaml', mode: 0o644 },
        { rel: 'new.so', mode: 0o755 },
      ],
      dest,
      { skipIdentical: true },
    );
    await removeDir(staging);
    expect(result).toEqual({ placed: ['changed.yaml', 'new.so'], unchanged: ['same.yaml'] });
    expect((await stat(join(dest, 'same.yaml'))).ino).toBe(sameIno);
    expect((await stat(join(dest, 'same.yaml'))).mode & 0o777).toBe(0o644);
    expect(await readFile(join(dest, 'changed.yaml'), 'utf8')).toBe('v2\n');
    // A rename, not a copy: the placed file is the staged inode.
    expect((await stat(join(dest, 'changed.yaml'))).ino).toBe(stagedIno);
    expect((await stat(join(dest, 'new.so'))).mode & 0o777).toBe(0o755);
    expect((await readdir(dest)).sort()).toEqual(['changed.yaml', 'new.so', 'same.yaml']);
  });

  it('replaces identical files too without skipIdentical', async () => {
    const dest = await tempDir('place-');
    await writeFile(join(dest, 'r.yaml'), 'same');
    const before = (await stat(join(dest, 'r.yaml'))).ino;
    const staging = await makeStagingDir(dest);
    await writeFile(join(staging, 'r.yaml'), 'same');
    expect(await placeFiles(staging, [{ rel: 'r.yaml', mode: 0o644 }], dest, { skipIdentical: false })).toEqual({ placed: ['r.yaml'], unchanged: [] });
    expect((await stat(join(dest, 'r.yaml'))).ino).not.toBe(before);
  });

  it('creates subdirectories for nested files', async () => {
    const dest = await tempDir('place-');
    const staging = await makeStagingDir(dest);
    await mkdir(join(staging, 'plugins', 'x'), { recursive: true });
    await writeFile(join(staging, 'plugins', 'x', 'libx.so'), 'ELF');
    const result = await placeFiles(staging, [{ rel: 'plugins/x/libx.so', mode: 0o755 }], dest, { skipIdentical: true });
    expect(result.placed).toEqual(['plugins/x/libx.so']);
    expect(await readFile(join(dest, 'plugins', 'x', 'libx.so'), 'utf8')).toBe('ELF');
    expect((await stat(join(dest, 'plugins', 'x', 'libx.so'))).mode & 0o777).toBe(0o755);
  });

  it('on a failure midway keeps the files already placed complete, the rest old, and names the file', async () => {
    const dest = await tempDir('place-');
    await writeFile(join(dest, 'a.yaml'), 'old a');
    await writeFile(join(dest, 'c.yaml'), 'old c');
    // b.yaml cannot be renamed over: a non-empty directory holds its name.
    await mkdir(join(dest, 'b.yaml', 'inner'), { recursive: true });
    const staging = await makeStagingDir(dest);
    for (const n of ['a', 'b', 'c']) await writeFile(join(staging, `${n}.yaml`), `new ${n}`);
    const files = ['a', 'b', 'c'].map((n) => ({ rel: `${n}.yaml`, mode: 0o644 }));
    const err = await placeFiles(staging, files, dest, { skipIdentical: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiginfraError);
    expect((err as DiginfraError).code).toBe('IO');
    expect((err as DiginfraError).message).toContain(join(dest, 'b.yaml'));
    expect((err as DiginfraError).hint).toContain('a.yaml');
    expect(await readFile(join(dest, 'a.yaml'), 'utf8')).toBe('new a');
    expect(await readFile(join(dest, 'c.yaml'), 'utf8')).toBe('old c');
    expect(await readdir(join(dest, 'b.yaml'))).toEqual(['inner']);
  });

  it('says nothing changed when the first file fails', async () => {
    const dest = await tempDir('place-');
    const staging = await makeStagingDir(dest);
    const err = (await placeFiles(staging, [{ rel: 'missing.yaml', mode: 0o644 }], dest, { skipIdentical: false }).catch((e: unknown) => e)) as DiginfraError;
    expect(err.message).toContain('missing.yaml');
    expect(err.hint).toBe('no file was changed');
  });

  it.each(['../escape', '/etc/passwd', 'a/../../escape', '', '.'])('refuses to place %j outside the destination', async (rel) => {
    const dest = await tempDir('place-');
    const staging = await makeStagingDir(dest);
    await expect(placeFiles(staging, [{ rel, mode: 0o644 }], dest, { skipIdentical: false })).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
    expect(await readdir(join(dest, '..'))).toContain(basename(dest));
  });

  it.each([
    ['different', 'changed'],
    ['identical', 'same'],
  ])('replaces a symlinked destination (%s content) by a real file, leaving its target alone', async (_kind, content) => {
    const dest = await tempDir('place-');
    const elsewhere = await tempDir('elsewhere-');
    await writeFile(join(elsewhere, 'r.yaml'), 'same', { mode: 0o600 });
    await symlink(join(elsewhere, 'r.yaml'), join(dest, 'r.yaml'));
    const staging = await makeStagingDir(dest);
    await writeFile(join(staging, 'r.yaml'), content);
    expect(await placeFiles(staging, [{ rel: 'r.yaml', mode: 0o644 }], dest, { skipIdentical: true })).toEqual({ placed: ['r.yaml'], unchanged: [] });
    expect((await lstat(join(dest, 'r.yaml'))).isFile()).toBe(true);
    expect(await readFile(join(dest, 'r.yaml'), 'utf8')).toBe(content);
    expect(await readFile(join(elsewhere, 'r.yaml'), 'utf8')).toBe('same');
    expect((await stat(join(elsewhere, 'r.yaml'))).mode & 0o777).toBe(0o600);
  });
});

/** Every entry under `dir` (dirs with a trailing /), with type, mode, inode and bytes: the exact state. */
async function tree(dir: string): Promise<Record<string, string>> {
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

async function age(path: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  await utimes(path, t, t);
}

describe('sweepStaleStaging', () => {
  it('removes staging dirs and writeFileAtomic temp files older than the threshold, and nothing else', async () => {
    const dir = await tempDir('sweep-');
    const oldStaging = await makeStagingDir(dir);
    await mkdir(join(oldStaging, 'sub'));
    await writeFile(join(oldStaging, 'sub', 'f.yaml'), 'x');
    await age(oldStaging, 60 * 60 * 1000);
    const freshStaging = await makeStagingDir(dir);
    const oldTemp = join(dir, '.rules.yaml.tmp-0123456789ab');
    await writeFile(oldTemp, 'half');
    await age(oldTemp, 60 * 60 * 1000);
    // Old, but not ours: user files, other dot-files, a directory with a temp-file name.
    for (const name of ['rules.yaml', '.keep', 'diginfractl-staging-x', '.diginfractl.lock']) {
      await writeFile(join(dir, name), 'mine');
      await age(join(dir, name), 60 * 60 * 1000);
    }
    await mkdir(join(dir, '.d.tmp-0123456789ab'));
    await age(join(dir, '.d.tmp-0123456789ab'), 60 * 60 * 1000);

    const removed = await sweepStaleStaging(dir, 60_000);
    expect(removed.sort()).toEqual([oldStaging, oldTemp].sort());
    expect((await readdir(dir)).sort()).toEqual(['.d.tmp-0123456789ab', '.diginfractl.lock', '.keep', basename(freshStaging), 'diginfractl-staging-x', 'rules.yaml'].sort());
  });

  it('keeps entries younger than 10 minutes by default; a missing dir gives nothing', async () => {
    const dir = await tempDir('sweep-');
    const young = await makeStagingDir(dir);
    await age(young, 5 * 60 * 1000);
    const old = await makeStagingDir(dir);
    await age(old, 11 * 60 * 1000);
    expect(await sweepStaleStaging(dir)).toEqual([old]);
    expect(await readdir(dir)).toEqual([basename(young)]);
    expect(await sweepStaleStaging(join(dir, 'missing'))).toEqual([]);
  });
});

describe('placeFileSets (all or nothing)', () => {
  /** Two destinations, and `stage` to make a staging dir in one holding `files` (name -> content). */
  async function setup() {
    const root = await tempDir('sets-');
    const destA = join(root, 'rules');
    const destB = join(root, 'plugins');
    const stage = async (dest: string, files: Record<string, string>) => {
      const stagingDir = await makeStagingDir(dest);
      for (const [rel, content] of Object.entries(files)) {
        await mkdir(join(stagingDir, rel, '..'), { recursive: true });
        await writeFile(join(stagingDir, rel), content);
      }
      return { stagingDir, destDir: dest, files: Object.keys(files).map((rel) => ({ rel, mode: 0o644 })) };
    };
    return { root, destA, destB, stage };
  }

  it('on a failure in the second set, puts back every file of the first: replaced, chmodded, new, new dirs, removed', async () => {
    const { destA, destB, stage } = await setup();
    await mkdir(destA, { recursive: true });
    await mkdir(destB, { recursive: true });
    await writeFile(join(destA, 'changed.yaml'), 'old\n', { mode: 0o644 });
    await writeFile(join(destA, 'same.yaml'), 'same\n', { mode: 0o600 });
    await writeFile(join(destA, 'gone.yaml'), 'to remove\n');
    await symlink('/nonexistent/target', join(destA, 'link.yaml'));
    await writeFile(join(destB, 'liba.so'), 'old a');
    // The second set's second file cannot be placed: a non-empty directory holds its name.
    await mkdir(join(destB, 'libb.so', 'inner'), { recursive: true });
    const before = { a: await tree(destA), b: await tree(destB) };

    const setA = await stage(destA, { 'changed.yaml': 'new\n', 'same.yaml': 'same\n', 'new.yaml': 'n', 'sub/dir/deep.yaml': 'd', 'link.yaml': 'real' });
    const setB = await stage(destB, { 'liba.so': 'new a', 'libb.so': 'new b' });
    let committed = false;
    const err = await placeFileSets([setA, setB], { skipIdentical: true, remove: [join(destA, 'gone.yaml')], beforeCommit: async () => void (committed = true) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiginfraError);
    expect((err as DiginfraError).code).toBe('IO');
    expect((err as DiginfraError).message).toContain(join(destB, 'libb.so'));
    expect((err as DiginfraError).hint).toContain('nothing was changed');
    expect(committed).toBe(false);
    await removeDir(setA.stagingDir);
    await removeDir(setB.stagingDir);
    // Byte for byte, mode for mode, inode for inode: the previous files themselves are back.
    expect({ a: await tree(destA), b: await tree(destB) }).toEqual(before);
  });

  it('a failing beforeCommit (the lock file write) rolls back the files placed and the files removed', async () => {
    const { destA, destB, stage } = await setup();
    await mkdir(destA, { recursive: true });
    await writeFile(join(destA, 'r.yaml'), 'v1');
    await writeFile(join(destA, 'old.yaml'), 'stale');
    const before = { a: await tree(destA) };
    const setA = await stage(destA, { 'r.yaml': 'v2' });
    const setB = await stage(destB, { 'p.so': 'p' });
    const boom = new DiginfraError('IO', 'cannot write the lock file');
    const err = await placeFileSets([setA, setB], { skipIdentical: true, remove: [join(destA, 'old.yaml')], beforeCommit: () => Promise.reject(boom) }).catch((e: unknown) => e);
    expect(err).toBe(boom);
    await removeDir(setA.stagingDir);
    await removeDir(setB.stagingDir);
    expect({ a: await tree(destA) }).toEqual(before);
    expect(await tree(destB)).toEqual({});
  });

  it('on success places every set, removes what was asked, and leaves no backup behind', async () => {
    const { destA, destB, stage } = await setup();
    await mkdir(destA, { recursive: true });
    await writeFile(join(destA, 'r.yaml'), 'v1');
    await writeFile(join(destA, 'same.yaml'), 's', { mode: 0o600 });
    await writeFile(join(destA, 'old.yaml'), 'stale');
    const setA = await stage(destA, { 'r.yaml': 'v2', 'same.yaml': 's' });
    const setB = await stage(destB, { 'p.so': 'p' });
    let lockWritten = false;
    const res = await placeFileSets([setA, setB], {
      skipIdentical: true,
      remove: [join(destA, 'old.yaml'), join(destA, 'never-existed.yaml')],
      beforeCommit: async () => {
        // Runs with every file already in place.
        expect(await readFile(join(destB, 'p.so'), 'utf8')).toBe('p');
        lockWritten = true;
      },
    });
    expect(lockWritten).toBe(true);
    expect(res).toEqual({ sets: [{ placed: ['r.yaml'], unchanged: ['same.yaml'] }, { placed: ['p.so'], unchanged: [] }], removed: [join(destA, 'old.yaml')] });
    await removeDir(setA.stagingDir);
    await removeDir(setB.stagingDir);
    expect((await readdir(destA)).sort()).toEqual(['r.yaml', 'same.yaml']);
    expect(await readdir(destB)).toEqual(['p.so']);
    expect((await stat(join(destA, 'same.yaml'))).mode & 0o777).toBe(0o644);
  });

  it('refuses a path outside a destination before touching anything', async () => {
    const { destA, stage } = await setup();
    await mkdir(destA, { recursive: true });
    await writeFile(join(destA, 'r.yaml'), 'v1');
    const setA = await stage(destA, { 'r.yaml': 'v2' });
    await expect(placeFileSets([setA, { ...setA, files: [{ rel: '../x', mode: 0o644 }] }], { skipIdentical: true })).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
    expect(await readFile(join(destA, 'r.yaml'), 'utf8')).toBe('v1');
  });
});
