import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiginfraError } from '../../../src/errors.js';
import { fsyncDir, openAtomicFile, writeFileAtomic } from '../../../src/util/index.js';
import { withUmask } from './helpers.js';
import { tempDir } from '../../helpers/fs.js';

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

describe('openAtomicFile', () => {
  it('writes pieces of every size in order, and shows them at the path only on commit', async () => {
    const dir = await tempDir('atomic-');
    const file = join(dir, 'index.entries.json');
    await writeFile(file, 'old');
    const f = await openAtomicFile(file, { mode: 0o600 });
    const pieces = [...Array.from({ length: 5000 }, (_, i) => `piece ${i} é,`), 'x'.repeat(200_000), Buffer.from('bytes'), 'end'];
    for (const p of pieces) await f.write(p);
    expect(await readFile(file, 'utf8')).toBe('old');
    await f.commit();
    expect(await readFile(file)).toEqual(Buffer.concat(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['index.entries.json']);
  });

  it('abort leaves the path as it was and no temp file; a write after it fails naming the path', async () => {
    const dir = await tempDir('atomic-');
    const file = join(dir, 'index.search.jsonl');
    await writeFile(file, 'old');
    const f = await openAtomicFile(file);
    await f.write('x'.repeat(100_000));
    expect((await readdir(dir)).length).toBe(2);
    await f.abort();
    await f.abort();
    expect(await readdir(dir)).toEqual(['index.search.jsonl']);
    expect(await readFile(file, 'utf8')).toBe('old');
    const err = await f.write('more').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiginfraError);
    expect((err as DiginfraError).message).toBe(`cannot write ${file}: already committed or aborted`);
  });
});

describe('fsyncDir', () => {
  it('syncs a directory and names a missing one', async () => {
    const dir = await tempDir('fsync-');
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
    await expect(fsyncDir(join(dir, 'missing'))).rejects.toMatchObject({ code: 'IO', message: expect.stringContaining(join(dir, 'missing')) });
  });
});
