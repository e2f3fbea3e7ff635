/**
 * A disk that fails while a large file is flushed in the background (extractLayer's datasync every
 * 8 MiB). A real disk here will not fail on demand, so `FileHandle.datasync` is made to fail: the
 * error must reach the caller (a later fsync on another descriptor may not report it again), and no
 * write may still be pending when extractLayer settles.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import type * as FsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it, vi } from 'vitest';

const flushes = vi.hoisted(() => ({ calls: 0, fail: true }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof FsPromises>();
  const { withOpenHook } = await import('../helpers/failing-disk.js');
  return withOpenHook(real, (fh) => {
    const realDatasync = fh.datasync.bind(fh);
    fh.datasync = async () => {
      flushes.calls++;
      await realDatasync();
      if (flushes.fail) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', syscall: 'fdatasync' });
    };
  });
});

const { extractLayer } = await import('../../src/artifact/extract-layer.js');

/** A tar.gz holding one file of `size` random bytes (random: gzip stores it, so the test stays fast). */
function layerWith(name: string, size: number): Buffer {
  const data = randomBytes(size);
  const header = Buffer.alloc(512);
  new tar.Header({ path: name, type: 'File', size, mode: 0o644, mtime: new Date(0) }).encode(header, 0);
  return gzipSync(Buffer.concat([header, data, Buffer.alloc((512 - (size % 512)) % 512), Buffer.alloc(1024)]), { level: 1 });
}

describe('extractLayer when the background flush of a large file fails', () => {
  it('reports the flush error, and leaves no write pending', async () => {
    const staging = await mkdtemp(join(tmpdir(), 'flush-fault-'));
    flushes.calls = 0;
    flushes.fail = true;
    const err = await extractLayer(Readable.from([layerWith('big.bin', 20 * 1024 * 1024)]), staging, { maxBytes: 64 * 1024 * 1024 }).catch((e: unknown) => e);
    expect(flushes.calls).toBeGreaterThanOrEqual(1);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/cannot write "big\.bin" into .*EIO: i\/o error, fdatasync/);
    expect((err as { code?: string }).code).toBe('IO');
    // Settled means settled: the file is not written to any more.
    const size = (await stat(join(staging, 'big.bin'))).size;
    await new Promise((r) => setTimeout(r, 100));
    expect((await stat(join(staging, 'big.bin'))).size).toBe(size);
  });

  it('extracts the same layer when the flushes succeed (the mock itself changes nothing else)', async () => {
    const staging = await mkdtemp(join(tmpdir(), 'flush-ok-'));
    flushes.calls = 0;
    flushes.fail = false;
    const files = await extractLayer(Readable.from([layerWith('big.bin', 20 * 1024 * 1024)]), staging, { maxBytes: 64 * 1024 * 1024 });
    expect(files).toEqual([{ rel: 'big.bin', mode: 0o644, size: 20 * 1024 * 1024 }]);
    expect(flushes.calls).toBeGreaterThanOrEqual(1);
    expect(await readdir(staging)).toEqual(['big.bin']);
    expect((await stat(join(staging, 'big.bin'))).size).toBe(20 * 1024 * 1024);
  });
});
