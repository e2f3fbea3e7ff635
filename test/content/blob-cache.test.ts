/**
 * The blob cache on its own: small content stored by digest through the atomic writer, verified when
 * read back, and the leftovers of a crashed write swept once they are old.
 */
import { mkdtemp, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlobCache } from '../../src/content/index.js';
import { sha256Digest } from '../../src/registry/index.js';

async function cache(): Promise<BlobCache> {
  return new BlobCache(await mkdtemp(join(tmpdir(), 'blob-cache-')));
}

describe('blob cache', () => {
  it('stores content under its digest, leaves no temp file, and refuses a copy that no longer matches', async () => {
    const c = await cache();
    const data = Buffer.from('{"name":"rules","version":"1.0.0"}');
    const digest = sha256Digest(data);
    await c.put(digest, data);
    expect(await readdir(join(c.dir, 'sha256'))).toEqual([digest.slice('sha256:'.length)]);
    expect(await c.get(digest)).toEqual(data);
    await writeFile(c.path(digest), 'changed on disk');
    expect(await c.get(digest)).toBeUndefined();
    expect(await readdir(join(c.dir, 'sha256'))).toEqual([]);
  });

  it('sweeps the temp file of a write that never finished once it is old, and leaves a young one', async () => {
    const c = await cache();
    const dir = join(c.dir, 'sha256');
    await c.put(sha256Digest('x'), Buffer.from('x'));
    const old = join(dir, `.${'a'.repeat(64)}.tmp-0123456789ab`);
    const young = join(dir, `.${'b'.repeat(64)}.tmp-ba9876543210`);
    await writeFile(old, 'half');
    await writeFile(young, 'in progress');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(old, hourAgo, hourAgo);
    expect(await c.sweepTemp()).toEqual([old]);
    expect((await readdir(dir)).sort()).toEqual([`.${'b'.repeat(64)}.tmp-ba9876543210`, sha256Digest('x').slice('sha256:'.length)].sort());
  });
});
