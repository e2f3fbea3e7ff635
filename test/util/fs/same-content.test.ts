import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sameContent } from '../../../src/util/index.js';
import { tempDir } from '../../helpers/fs.js';

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
