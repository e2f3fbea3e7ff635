import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeStagingDir, removeDir, sweepStaleStaging } from '../../../src/util/index.js';
import { age } from './helpers.js';
import { tempDir } from '../../helpers/fs.js';

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
