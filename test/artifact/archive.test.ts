/**
 * Layer packing and defensive extraction, with real malicious archives built header by header.
 */
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync, createGzip } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { extractLayer, packLayer } from '../../src/artifact/archive.js';
import { DiginfraError } from '../../src/errors.js';

const RULES = join(import.meta.dirname, '../fixtures/falco_rules.yaml');

interface Entry {
  path: string;
  type?: tar.Header['type'];
  linkpath?: string;
  data?: Buffer;
  size?: number;
  mode?: number;
}

/** A tar archive written block by block, so it can say anything a hostile packer would. */
function tarOf(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const block = Buffer.alloc(512);
    new tar.Header({
      path: e.path,
      type: e.type ?? 'File',
      size: e.size ?? data.length,
      mode: e.mode ?? 0o644,
      mtime: new Date(0),
      ...(e.linkpath !== undefined && { linkpath: e.linkpath }),
    }).encode(block, 0);
    blocks.push(block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function staging(): Promise<{ root: string; dir: string }> {
  const root = await mkdtemp(join(tmpdir(), 'archive-'));
  const dir = join(root, 'staging');
  await mkdir(dir);
  return { root, dir };
}

async function refused(p: Promise<unknown>): Promise<DiginfraError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DiginfraError);
  return err as DiginfraError;
}

describe('packLayer', () => {
  it('round-trips a real rules file with the same bytes and a 0644 mode', async () => {
    const { root, dir } = await staging();
    const packed = await packLayer([RULES], join(root, 'layer.tar.gz'));
    expect(packed.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(packed.size).toBe((await stat(join(root, 'layer.tar.gz'))).size);
    const files = await extractLayer(Readable.from(await readFile(join(root, 'layer.tar.gz'))), dir, { maxBytes: 10 << 20 });
    expect(files).toEqual([{ rel: 'falco_rules.yaml', mode: 0o644, size: (await stat(RULES)).size }]);
    expect((await readFile(join(dir, 'falco_rules.yaml'))).equals(await readFile(RULES))).toBe(true);
  });

  it('gives the same digest for the same content whatever the mtime and permissions', async () => {
    const { root } = await staging();
    const a = join(root, 'a');
    const b = join(root, 'b');
    await mkdir(a);
    await mkdir(b);
    await writeFile(join(a, 'rules.yaml'), '- list: x\n', { mode: 0o600 });
    await new Promise((r) => setTimeout(r, 1100));
    await writeFile(join(b, 'rules.yaml'), '- list: x\n', { mode: 0o664 });
    const first = await packLayer([join(a, 'rules.yaml')], join(root, '1.tar.gz'));
    const second = await packLayer([join(b, 'rules.yaml')], join(root, '2.tar.gz'));
    expect(second.digest).toBe(first.digest);
  });

  it('keeps executables executable (plugins)', async () => {
    const { root, dir } = await staging();
    await writeFile(join(root, 'libx.so'), 'ELF', { mode: 0o700 });
    await packLayer([join(root, 'libx.so')], join(root, 'l.tar.gz'));
    const files = await extractLayer(Readable.from(await readFile(join(root, 'l.tar.gz'))), dir, { maxBytes: 1000 });
    expect(files[0]!.mode).toBe(0o755);
    expect((await stat(join(dir, 'libx.so'))).mode & 0o777).toBe(0o755);
  });
});

describe('extractLayer refuses hostile archives and writes nothing outside staging', () => {
  it.each([
    ['a path with ..', [{ path: '../../etc/passwd', data: Buffer.from('x') }], /leaves the target directory/],
    ['an absolute path', [{ path: '/etc/cron.d/evil', data: Buffer.from('x') }], /absolute path/],
    ['a symlink', [{ path: 'link', type: 'SymbolicLink' as const, linkpath: '/etc' }, { path: 'link/x', data: Buffer.from('x') }], /symbolic link to "\/etc"/],
    ['a hard link', [{ path: 'shadow', type: 'Link' as const, linkpath: '/etc/shadow' }], /hard link/],
    ['a character device', [{ path: 'tty', type: 'CharacterDevice' as const }], /CharacterDevice entry/],
    ['a fifo', [{ path: 'pipe', type: 'FIFO' as const }], /FIFO entry/],
  ])('%s', async (_name, entries, message) => {
    const { root, dir } = await staging();
    const err = await refused(extractLayer(Readable.from(gzipSync(tarOf(entries as Entry[]))), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toMatch(message);
    expect((await readdir(root)).sort()).toEqual(['staging']);
  });

  it('stops a gzip bomb at the size limit without inflating it', async () => {
    const { dir } = await staging();
    const size = 200 * 1024 * 1024;
    // The header declares the real size; the stream of zeros behind it compresses to ~200 KB.
    const header = Buffer.alloc(512);
    new tar.Header({ path: 'bomb.yaml', type: 'File', size, mode: 0o644, mtime: new Date(0) }).encode(header, 0);
    async function* zeros(): AsyncGenerator<Buffer> {
      yield header;
      const chunk = Buffer.alloc(1 << 20);
      for (let i = 0; i < size / chunk.length; i++) yield chunk;
      yield Buffer.alloc(1024);
    }
    const gz = Readable.from(zeros()).pipe(createGzip());
    const started = Date.now();
    const rss = process.memoryUsage().rss;
    const err = await refused(extractLayer(gz, dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('1048576-byte limit');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
    expect(await readdir(dir)).toEqual([]);
  });

  it('counts bytes across files against the limit', async () => {
    const { dir } = await staging();
    const entries = [
      { path: 'a.yaml', data: Buffer.alloc(600) },
      { path: 'b.yaml', data: Buffer.alloc(600) },
    ];
    const err = await refused(extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1000 }));
    expect(err.message).toContain('"b.yaml"');
  });

  it('refuses too many entries', async () => {
    const { dir } = await staging();
    const entries = Array.from({ length: 20 }, (_, i) => ({ path: `f${i}.yaml`, data: Buffer.from('x') }));
    const err = await refused(extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20, maxEntries: 10 }));
    expect(err.message).toContain('more than 10 entries');
  });

  it('reports a truncated download as an invalid archive', async () => {
    const { dir } = await staging();
    const full = gzipSync(tarOf([{ path: 'rules.yaml', data: Buffer.alloc(100_000, 65) }]));
    const err = await refused(extractLayer(Readable.from(full.subarray(0, full.length / 2)), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('ARTIFACT_INVALID');
    expect(err.message).toMatch(/not a valid tar/);
  });

  it('accepts plain directories and nested files, normalizing modes', async () => {
    const { dir } = await staging();
    const entries = [
      { path: 'sub/', type: 'Directory' as const, mode: 0o777 },
      { path: './sub/rules.yaml', data: Buffer.from('- list: a\n'), mode: 0o4777 },
    ];
    const files = await extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20 });
    expect(files).toEqual([{ rel: 'sub/rules.yaml', mode: 0o755, size: 10 }]);
    expect((await stat(join(dir, 'sub/rules.yaml'))).mode & 0o7777).toBe(0o755);
  });
});
