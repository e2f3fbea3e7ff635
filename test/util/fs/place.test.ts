import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiginfraError } from '../../../src/errors.js';
import { makeStagingDir, placeFiles, removeDir } from '../../../src/util/index.js';
import { tempDir } from '../../helpers/fs.js';

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
