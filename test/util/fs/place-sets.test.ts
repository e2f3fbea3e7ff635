import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiginfraError } from '../../../src/errors.js';
import { makeStagingDir, placeFileSets, removeDir } from '../../../src/util/index.js';
import { tree } from './helpers.js';
import { tempDir } from '../../helpers/fs.js';

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
