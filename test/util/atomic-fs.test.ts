import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeStagingDir, placeFiles, removeDir, sameContent, writeFileAtomic } from '../../src/util/atomic-fs.js';

describe('writeFileAtomic', () => {
  it('replaces a file with the mode asked and leaves no temp file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
    const file = join(dir, 'config.json');
    await writeFile(file, 'old');
    await writeFileAtomic(file, 'new', { mode: 0o600 });
    expect(await readFile(file, 'utf8')).toBe('new');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['config.json']);
  });

  it('fails with the path named and leaves no temp file behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atomic-'));
    const target = join(dir, 'rules.yaml');
    // A non-empty directory where the file should go: the final rename must fail.
    await mkdir(join(target, 'inner'), { recursive: true });
    await expect(writeFileAtomic(target, 'new')).rejects.toThrow(`cannot write ${target}`);
    expect(await readdir(dir)).toEqual(['rules.yaml']);
    expect(await readdir(target)).toEqual(['inner']);
  });
});

describe('placeFiles', () => {
  it('moves staged files in, skips identical ones, and sets modes', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'place-'));
    await writeFile(join(dest, 'same.yaml'), 'same\n', { mode: 0o600 });
    await writeFile(join(dest, 'changed.yaml'), 'v1\n');
    const staging = await makeStagingDir(dest);
    expect(staging.startsWith(join(dest, '.diginfractl-staging-'))).toBe(true);
    await writeFile(join(staging, 'same.yaml'), 'same\n');
    await writeFile(join(staging, 'changed.yaml'), 'v2\n');
    await writeFile(join(staging, 'new.so'), 'ELF');
    const sameIno = (await stat(join(dest, 'same.yaml'))).ino;
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
    expect((await stat(join(dest, 'new.so'))).mode & 0o777).toBe(0o755);
    expect((await readdir(dest)).sort()).toEqual(['changed.yaml', 'new.so', 'same.yaml']);
  });

  it('refuses to place a file outside the destination', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'place-'));
    const staging = await makeStagingDir(dest);
    await expect(placeFiles(staging, [{ rel: '../escape', mode: 0o644 }], dest, { skipIdentical: false })).rejects.toThrow(/outside/);
  });
});

describe('sameContent', () => {
  it('compares bytes, not names or times', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'same-'));
    await writeFile(join(dir, 'a'), 'x'.repeat(100_000));
    await writeFile(join(dir, 'b'), 'x'.repeat(100_000));
    await writeFile(join(dir, 'c'), `${'x'.repeat(99_999)}y`);
    expect(await sameContent(join(dir, 'a'), join(dir, 'b'))).toBe(true);
    expect(await sameContent(join(dir, 'a'), join(dir, 'c'))).toBe(false);
    expect(await sameContent(join(dir, 'a'), join(dir, 'missing'))).toBe(false);
  });
});
