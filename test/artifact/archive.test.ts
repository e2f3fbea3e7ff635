/**
 * Layer packing and defensive extraction, with real malicious archives built header by header.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { packLayer } from '../../src/artifact/archive.js';
import { extractLayer } from '../../src/artifact/extract-layer.js';
import { DiginfraError } from '../../src/errors.js';
import { errorOf } from '../helpers/errors.js';

const RULES = join(import.meta.dirname, '../fixtures/falco_rules.yaml');

interface Entry {
  path: string;
  type?: tar.Header['type'];
  linkpath?: string;
  data?: Buffer;
  size?: number;
  mode?: number;
  /** A pax extended header ('x') before the entry, with these records. */
  pax?: Record<string, string>;
  /** A GNU long-name ('L') entry before the entry, with this name. */
  gnuLongName?: string;
}

function block(fields: ConstructorParameters<typeof tar.Header>[0]): Buffer {
  const b = Buffer.alloc(512);
  new tar.Header(fields).encode(b, 0);
  return b;
}

function padded(data: Buffer): Buffer[] {
  return [data, Buffer.alloc((512 - (data.length % 512)) % 512)];
}

function paxBody(records: Record<string, string>): Buffer {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = rest.length + 1;
    while (String(len).length + rest.length !== len) len++;
    body += `${len}${rest}`;
  }
  return Buffer.from(body);
}

/** A tar archive written block by block, so it can say anything a hostile packer would. */
function tarOf(entries: Entry[], opts: { end?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const body = paxBody(e.pax);
      blocks.push(block({ path: 'PaxHeader/x', type: 'ExtendedHeader', size: body.length, mode: 0o644, mtime: new Date(0) }), ...padded(body));
    }
    if (e.gnuLongName !== undefined) {
      const body = Buffer.from(`${e.gnuLongName}\0`);
      blocks.push(block({ path: '././@LongLink', type: 'NextFileHasLongPath', size: body.length, mode: 0o644, mtime: new Date(0) }), ...padded(body));
    }
    const data = e.data ?? Buffer.alloc(0);
    blocks.push(
      block({
        path: e.path,
        type: e.type ?? 'File',
        size: e.size ?? data.length,
        mode: e.mode ?? 0o644,
        mtime: new Date(0),
        ...(e.linkpath !== undefined && { linkpath: e.linkpath }),
      }),
      ...padded(data),
    );
  }
  if (opts.end !== false) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A temp root with the staging dir two levels down, so `../../x` would still land inside the root. */
async function staging(): Promise<{ root: string; dir: string }> {
  const root = await mkdtemp(join(tmpdir(), 'archive-'));
  const dir = join(root, 'dest', 'sub', 'staging');
  await mkdir(dir, { recursive: true });
  return { root, dir };
}

/** Every path under `root`, relative, sorted (directories with a trailing /). */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      const abs = join(dir, name);
      const st = await lstat(abs);
      out.push(relative(root, abs) + (st.isDirectory() ? '/' : ''));
      if (st.isDirectory()) await walk(abs);
    }
  }
  await walk(root);
  return out.sort();
}

/** Nothing exists under `root` except the staging dir's ancestors and what is inside staging. */
async function expectOnlyStaging(root: string, dir: string): Promise<void> {
  const stagingRel = relative(root, dir);
  const outside = (await tree(root)).filter((p) => !p.startsWith(`${stagingRel}/`) && !`${stagingRel}/`.startsWith(p));
  expect(outside).toEqual([]);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('packLayer', () => {
  it('round-trips a real rules file with the same bytes and a 0644 mode', async () => {
    const { root, dir } = await staging();
    const packed = await packLayer([RULES], join(root, 'layer.tar.gz'));
    const bytes = await readFile(join(root, 'layer.tar.gz'));
    expect(packed.digest).toBe(`sha256:${sha256(bytes)}`);
    expect(packed.size).toBe(bytes.length);
    const files = await extractLayer(Readable.from(bytes), dir, { maxBytes: 10 << 20 });
    expect(files).toEqual([{ rel: 'falco_rules.yaml', mode: 0o644, size: (await stat(RULES)).size }]);
    expect((await readFile(join(dir, 'falco_rules.yaml'))).equals(await readFile(RULES))).toBe(true);
    expect((await readdir(root)).sort()).toEqual(['dest', 'layer.tar.gz']);
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

  it('packs the same file to the same digest at different times', async () => {
    const { root } = await staging();
    const file = join(root, 'falco_rules.yaml');
    await copyFile(RULES, file);
    const first = await packLayer([file], join(root, '1.tar.gz'));
    await utimes(file, new Date('2031-01-02T03:04:05Z'), new Date('2031-01-02T03:04:05Z'));
    await new Promise((r) => setTimeout(r, 1100));
    const second = await packLayer([file], join(root, '2.tar.gz'));
    expect(second).toEqual(first);
    expect((await readFile(join(root, '2.tar.gz'))).equals(await readFile(join(root, '1.tar.gz')))).toBe(true);
  });

  it('writes portable headers: sorted root entries, mtime 0, no owner, normalized modes; gzip mtime 0 and OS unix', async () => {
    const { root } = await staging();
    await writeFile(join(root, 'z.yaml'), 'z\n', { mode: 0o640 });
    await writeFile(join(root, 'a.so'), 'ELF', { mode: 0o750 });
    await mkdir(join(root, 'm'));
    await writeFile(join(root, 'm', 'M.yaml'), 'm\n', { mode: 0o4755 });
    const out = join(root, 'l.tar.gz');
    await packLayer([join(root, 'z.yaml'), join(root, 'm', 'M.yaml'), join(root, 'a.so')], out);
    const gz = await readFile(out);
    expect(gz.readUInt32LE(4)).toBe(0); // gzip MTIME
    expect(gz[9]).toBe(3); // gzip OS = Unix
    const seen: { path: string; mode?: number; uid?: number; gid?: number; uname?: string; gname?: string; mtime?: number; type: string }[] = [];
    await tar.t({
      file: out,
      onReadEntry: (e) => {
        seen.push({ path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, uname: e.uname ?? '', gname: e.gname ?? '', mtime: e.mtime?.getTime(), type: e.type });
      },
    });
    const common = { uid: 0, gid: 0, uname: '', gname: '', mtime: 0, type: 'File' };
    expect(seen).toEqual([
      { path: 'M.yaml', mode: 0o755, ...common },
      { path: 'a.so', mode: 0o755, ...common },
      { path: 'z.yaml', mode: 0o644, ...common },
    ]);
  });

  it('keeps executables executable (plugins)', async () => {
    const { root, dir } = await staging();
    await writeFile(join(root, 'libx.so'), 'ELF', { mode: 0o700 });
    await packLayer([join(root, 'libx.so')], join(root, 'l.tar.gz'));
    const files = await extractLayer(Readable.from(await readFile(join(root, 'l.tar.gz'))), dir, { maxBytes: 1000 });
    expect(files[0]!.mode).toBe(0o755);
    expect((await stat(join(dir, 'libx.so'))).mode & 0o777).toBe(0o755);
  });

  it('round-trips a name too long for ustar (pax header) and an empty file', async () => {
    const { root, dir } = await staging();
    const long = `${'r'.repeat(150)}.yaml`;
    await writeFile(join(root, long), 'long\n');
    await writeFile(join(root, 'empty.yaml'), '');
    await packLayer([join(root, long), join(root, 'empty.yaml')], join(root, 'l.tar.gz'));
    const files = await extractLayer(Readable.from(await readFile(join(root, 'l.tar.gz'))), dir, { maxBytes: 1000 });
    expect(files).toEqual([
      { rel: 'empty.yaml', mode: 0o644, size: 0 },
      { rel: long, mode: 0o644, size: 5 },
    ]);
    expect(await readFile(join(dir, long), 'utf8')).toBe('long\n');
  });

  it('streams a large file without holding it in memory, and round-trips it', async () => {
    const { root, dir } = await staging();
    const big = join(root, 'big.bin');
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) % 251;
    await writeFile(big, Buffer.concat(Array.from({ length: 24 }, () => chunk)));
    const packed = await packLayer([big], join(root, 'big.tar.gz'));
    expect(packed.size).toBeGreaterThan(0);
    const { createReadStream } = await import('node:fs');
    const files = await extractLayer(createReadStream(join(root, 'big.tar.gz'), { highWaterMark: 4096 }), dir, { maxBytes: 64 << 20 });
    expect(files).toEqual([{ rel: 'big.bin', mode: 0o644, size: 24 << 20 }]);
    expect(sha256(await readFile(join(dir, 'big.bin')))).toBe(sha256(await readFile(big)));
  });

  it('refuses nothing to pack, duplicate names and directories, leaving no output or temp file', async () => {
    const { root } = await staging();
    await mkdir(join(root, 'x'));
    await mkdir(join(root, 'y'));
    await writeFile(join(root, 'x', 'r.yaml'), 'a');
    await writeFile(join(root, 'y', 'r.yaml'), 'b');
    const out = join(root, 'out.tar.gz');
    expect((await errorOf(packLayer([], out))).code).toBe('USAGE');
    const dupe = await errorOf(packLayer([join(root, 'x', 'r.yaml'), join(root, 'y', 'r.yaml')], out));
    expect(dupe.code).toBe('USAGE');
    expect(dupe.message).toContain('two files named r.yaml');
    const isDir = await errorOf(packLayer([join(root, 'x')], out));
    expect(isDir.code).toBe('USAGE');
    expect(isDir.message).toContain('is not a regular file');
    await expect(packLayer([join(root, 'missing.yaml')], out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(root)).sort()).toEqual(['dest', 'x', 'y']);
  });

  it('replaces the output atomically: a failed pack leaves the previous output intact', async () => {
    const { root } = await staging();
    await writeFile(join(root, 'r.yaml'), 'r\n');
    const out = join(root, 'out.tar.gz');
    await writeFile(out, 'previous');
    await expect(packLayer([join(root, 'r.yaml'), join(root, 'gone.yaml')], out)).rejects.toThrow();
    expect(await readFile(out, 'utf8')).toBe('previous');
    await packLayer([join(root, 'r.yaml')], out);
    expect(gunzipSync(await readFile(out)).subarray(0, 6).toString()).toBe('r.yaml');
    expect((await readdir(root)).sort()).toEqual(['dest', 'out.tar.gz', 'r.yaml']);
  });
});

describe('extractLayer refuses hostile archives and writes nothing outside staging', () => {
  it.each([
    ['a path with ..', [{ path: '../../etc/passwd', data: Buffer.from('x') }], /"\.\.\/\.\.\/etc\/passwd" leaves the target directory/],
    ['a .. hidden in the middle', [{ path: 'ok/../../../escape.yaml', data: Buffer.from('x') }], /leaves the target directory/],
    ['a backslash ..', [{ path: 'a\\..\\..\\..\\escape.yaml', data: Buffer.from('x') }], /leaves the target directory/],
    ['an absolute path', [{ path: '/abs/path', data: Buffer.from('x') }], /"\/abs\/path" has an absolute path/],
    ['a drive letter', [{ path: 'C:\\evil.yaml', data: Buffer.from('x') }], /absolute path/],
    ['a .. in a pax path', [{ path: 'innocent.yaml', pax: { path: '../../pax-escape.yaml' }, data: Buffer.from('x') }], /"\.\.\/\.\.\/pax-escape\.yaml" leaves/],
    ['a .. in a GNU long name', [{ path: 'innocent.yaml', gnuLongName: `../../${'g'.repeat(120)}`, data: Buffer.from('x') }], /leaves the target directory/],
    ['a symlink to /etc then a file through it', [{ path: 'link', type: 'SymbolicLink', linkpath: '/etc' }, { path: 'link/x', data: Buffer.from('x') }], /"link" is a symbolic link to "\/etc"/],
    ['a symlink out of staging then a file through it', [{ path: 'up', type: 'SymbolicLink', linkpath: '../../..' }, { path: 'up/escape.yaml', data: Buffer.from('x') }], /symbolic link/],
    ['a symlink that stays inside', [{ path: 'a.yaml', data: Buffer.from('x') }, { path: 'b.yaml', type: 'SymbolicLink', linkpath: 'a.yaml' }], /"b\.yaml" is a symbolic link/],
    ['a hard link to /etc/shadow', [{ path: 'shadow', type: 'Link', linkpath: '/etc/shadow' }], /"shadow" is a hard link to "\/etc\/shadow"/],
    ['a character device', [{ path: 'tty', type: 'CharacterDevice' }], /"tty" is a CharacterDevice entry/],
    ['a block device', [{ path: 'sda', type: 'BlockDevice' }], /"sda" is a BlockDevice entry/],
    ['a fifo', [{ path: 'pipe', type: 'FIFO' }], /"pipe" is a FIFO entry/],
  ] as [string, Entry[], RegExp][])('%s', async (_name, entries, message) => {
    const { root, dir } = await staging();
    const err = await errorOf(extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toMatch(message);
    expect(err.hint).toBeTruthy();
    await expectOnlyStaging(root, dir);
    // No link of any kind was created in staging either.
    for (const p of await tree(dir)) expect((await lstat(join(dir, p))).isSymbolicLink()).toBe(false);
    expect(existsSync('/etc/x')).toBe(false);
  });

  it('refuses a file where the archive made a directory, and the reverse', async () => {
    const { root, dir } = await staging();
    const fileThenDir = [
      { path: 'a', data: Buffer.from('x') },
      { path: 'a/b.yaml', data: Buffer.from('y') },
    ];
    const err = await errorOf(extractLayer(Readable.from(gzipSync(tarOf(fileThenDir))), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('"a/b.yaml" needs "a" to be a directory');
    const other = join(root, 'other');
    await mkdir(other);
    const dirThenFile = [
      { path: 'd/', type: 'Directory' as const },
      { path: 'd', data: Buffer.from('x') },
    ];
    const err2 = await errorOf(extractLayer(Readable.from(gzipSync(tarOf(dirThenFile))), other, { maxBytes: 1 << 20 }));
    expect(err2.code).toBe('UNSAFE_ARCHIVE');
    expect(err2.message).toContain('"d" is a file');
  });

  it('refuses the same file twice in one layer', async () => {
    const { dir } = await staging();
    const entries = [
      { path: 'r.yaml', data: Buffer.from('one') },
      { path: './r.yaml', data: Buffer.from('two') },
    ];
    const err = await errorOf(extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('"./r.yaml" appears twice');
  });

  it('stops a gzip bomb (one huge file) at the size limit without inflating it', async () => {
    const { root, dir } = await staging();
    const size = 200 * 1024 * 1024;
    // The header declares the real size; the stream of zeros behind it compresses to ~200 KB.
    const header = block({ path: 'bomb.yaml', type: 'File', size, mode: 0o644, mtime: new Date(0) });
    async function* zeros(): AsyncGenerator<Buffer> {
      yield header;
      const chunk = Buffer.alloc(1 << 20);
      for (let i = 0; i < size / chunk.length; i++) yield chunk;
      yield Buffer.alloc(1024);
    }
    const gz = Readable.from(zeros()).pipe(createGzip());
    const started = Date.now();
    const rss = process.memoryUsage().rss;
    const err = await errorOf(extractLayer(gz, dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('1048576-byte limit at "bomb.yaml"');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
    expect(await readdir(dir)).toEqual([]);
    await expectOnlyStaging(root, dir);
  });

  it('stops 50 MB of zeros behind a tiny valid archive (maxBytes 1 MB) quickly and in little memory', async () => {
    const { root, dir } = await staging();
    const bomb = gzipSync(Buffer.concat([tarOf([{ path: 'a.yaml', data: Buffer.from('a\n') }]), Buffer.alloc(50 * 1024 * 1024)]), { level: 9 });
    expect(bomb.length).toBeLessThan(200 * 1024);
    const pieces = Array.from({ length: Math.ceil(bomb.length / 1024) }, (_, i) => bomb.subarray(i * 1024, (i + 1) * 1024));
    const started = Date.now();
    const rss = process.memoryUsage().rss;
    const err = await errorOf(extractLayer(Readable.from(pieces), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toMatch(/decompression bomb/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 1024 * 1024);
    await expectOnlyStaging(root, dir);
  });

  it('stops reading a 1 GiB bomb early: the producer is asked for a small part of it', async () => {
    const { dir } = await staging();
    const total = 1024 * 1024 * 1024;
    let produced = 0;
    async function* zeros(): AsyncGenerator<Buffer> {
      yield tarOf([{ path: 'a.yaml', data: Buffer.from('a\n') }]);
      const chunk = Buffer.alloc(1 << 20);
      while (produced < total) {
        produced += chunk.length;
        yield chunk;
      }
    }
    const err = await errorOf(extractLayer(Readable.from(zeros()).pipe(createGzip({ level: 1 })), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(produced).toBeLessThan(total / 4);
  });

  it('stops a bomb hidden in an oversized pax header', async () => {
    const { dir } = await staging();
    const size = 100 * 1024 * 1024;
    async function* parts(): AsyncGenerator<Buffer> {
      yield block({ path: 'PaxHeader/x', type: 'ExtendedHeader', size, mode: 0o644, mtime: new Date(0) });
      const chunk = Buffer.alloc(1 << 20, 0x41);
      for (let i = 0; i < size / chunk.length; i++) yield chunk;
      yield tarOf([{ path: 'a.yaml', data: Buffer.from('a') }]);
    }
    const started = Date.now();
    const err = await errorOf(extractLayer(Readable.from(parts()).pipe(createGzip()), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('counts bytes across files against the limit', async () => {
    const { dir } = await staging();
    const entries = [
      { path: 'a.yaml', data: Buffer.alloc(600) },
      { path: 'b.yaml', data: Buffer.alloc(600) },
    ];
    const err = await errorOf(extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1000 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('"b.yaml"');
  });

  it('refuses too many entries', async () => {
    const { dir } = await staging();
    const entries = Array.from({ length: 20 }, (_, i) => ({ path: `f${i}.yaml`, data: Buffer.from('x') }));
    const err = await errorOf(extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20, maxEntries: 10 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('more than 10 entries');
    const ok = await extractLayer(Readable.from(gzipSync(tarOf(entries.slice(0, 10)))), join(dir, '..'), { maxBytes: 1 << 20, maxEntries: 10 });
    expect(ok).toHaveLength(10);
  });

  it('reports a truncated download as an invalid archive', async () => {
    const { root, dir } = await staging();
    const full = gzipSync(tarOf([{ path: 'rules.yaml', data: Buffer.alloc(100_000, 65) }]));
    const err = await errorOf(extractLayer(Readable.from(full.subarray(0, full.length / 2)), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('ARTIFACT_INVALID');
    expect(err.message).toMatch(/not a valid tar\.gz: truncated gzip data/);
    await expectOnlyStaging(root, dir);
  });

  it('reports a truncated tar inside valid gzip, and data that is not an archive', async () => {
    const { dir } = await staging();
    const tarBytes = tarOf([{ path: 'rules.yaml', data: Buffer.alloc(10_000, 65) }], { end: false });
    const cut = await errorOf(extractLayer(Readable.from(gzipSync(tarBytes.subarray(0, 4096))), dir, { maxBytes: 1 << 20 }));
    expect(cut.code).toBe('ARTIFACT_INVALID');
    expect(cut.message).toMatch(/not a valid tar archive/);
    const junk = await errorOf(extractLayer(Readable.from(gzipSync(Buffer.from('hello, not a tar file\n'.repeat(100)))), join(dir, '..'), { maxBytes: 1 << 20 }));
    expect(junk.code).toBe('ARTIFACT_INVALID');
    const badGzip = Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(100, 7)]);
    const bad = await errorOf(extractLayer(Readable.from(badGzip), join(dir, '../..'), { maxBytes: 1 << 20 }));
    expect(bad.code).toBe('ARTIFACT_INVALID');
    expect(bad.message).toMatch(/corrupt gzip data/);
  });

  it('passes an error of the input stream through, and writes nothing after it settles', async () => {
    const { root, dir } = await staging();
    const gz = gzipSync(tarOf([{ path: 'a.yaml', data: Buffer.alloc(300_000, 66) }, { path: 'b.yaml', data: Buffer.alloc(300_000, 67) }]));
    async function* failing(): AsyncGenerator<Buffer> {
      yield gz.subarray(0, gz.length / 2);
      await new Promise((r) => setTimeout(r, 20));
      throw new DiginfraError('DIGEST_MISMATCH', 'blob sha256:abc does not match its digest');
    }
    const err = await errorOf(extractLayer(Readable.from(failing()), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('DIGEST_MISMATCH');
    await rm(dir, { recursive: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(dir)).toBe(false);
    await expectOnlyStaging(root, dir);
  });
});

describe('extractLayer writes what it accepts exactly', () => {
  it('accepts plain directories and nested files, normalizing modes (no setuid, no world-write)', async () => {
    const { dir } = await staging();
    const entries = [
      { path: 'sub/', type: 'Directory' as const, mode: 0o777 },
      { path: './sub/rules.yaml', data: Buffer.from('- list: a\n'), mode: 0o4777 },
      { path: 'sub/deeper/x.yaml', data: Buffer.from('x'), mode: 0o2666 },
      { path: 'plain.yaml', data: Buffer.from('p'), mode: 0o600 },
    ];
    const files = await extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20 });
    expect(files).toEqual([
      { rel: 'sub/rules.yaml', mode: 0o755, size: 10 },
      { rel: 'sub/deeper/x.yaml', mode: 0o644, size: 1 },
      { rel: 'plain.yaml', mode: 0o644, size: 1 },
    ]);
    expect((await stat(join(dir, 'sub/rules.yaml'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dir, 'sub/deeper/x.yaml'))).mode & 0o7777).toBe(0o644);
    expect((await stat(join(dir, 'plain.yaml'))).mode & 0o7777).toBe(0o644);
    expect((await stat(join(dir, 'sub'))).mode & 0o7777).toBe(0o755);
    expect((await stat(join(dir, 'sub/deeper'))).mode & 0o7777).toBe(0o755);
  });

  it('sets exact modes whatever the umask', async () => {
    const { dir } = await staging();
    const old = process.umask(0o077);
    try {
      const entries = [
        { path: 'r.yaml', data: Buffer.from('r'), mode: 0o644 },
        { path: 'd/p.so', data: Buffer.from('p'), mode: 0o755 },
      ];
      await extractLayer(Readable.from(gzipSync(tarOf(entries))), dir, { maxBytes: 1 << 20 });
    } finally {
      process.umask(old);
    }
    expect((await stat(join(dir, 'r.yaml'))).mode & 0o777).toBe(0o644);
    expect((await stat(join(dir, 'd/p.so'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dir, 'd'))).mode & 0o777).toBe(0o755);
  });

  it('accepts a plain (uncompressed) tar and an empty archive', async () => {
    const { dir } = await staging();
    expect(await extractLayer(Readable.from(tarOf([{ path: 'r.yaml', data: Buffer.from('r') }])), dir, { maxBytes: 10 })).toEqual([
      { rel: 'r.yaml', mode: 0o644, size: 1 },
    ]);
    expect(await extractLayer(Readable.from(gzipSync(Buffer.alloc(10240))), join(dir, '..'), { maxBytes: 10 })).toEqual([]);
  });

  it('lets a later layer replace a file of an earlier one in the same staging dir', async () => {
    const { dir } = await staging();
    await extractLayer(Readable.from(gzipSync(tarOf([{ path: 'r.yaml', data: Buffer.from('layer 1') }, { path: 'only1.yaml', data: Buffer.from('1') }]))), dir, { maxBytes: 100 });
    const second = await extractLayer(Readable.from(gzipSync(tarOf([{ path: 'r.yaml', data: Buffer.from('layer 2!') }]))), dir, { maxBytes: 100 });
    expect(second).toEqual([{ rel: 'r.yaml', mode: 0o644, size: 8 }]);
    expect(await readFile(join(dir, 'r.yaml'), 'utf8')).toBe('layer 2!');
    expect(await readFile(join(dir, 'only1.yaml'), 'utf8')).toBe('1');
  });

  it('ignores what follows the end-of-archive marker (within the limit)', async () => {
    const { dir } = await staging();
    const data = Buffer.concat([tarOf([{ path: 'r.yaml', data: Buffer.from('r') }]), Buffer.from('trailing junk that tar ignores')]);
    expect(await extractLayer(Readable.from(gzipSync(data)), dir, { maxBytes: 10 })).toEqual([{ rel: 'r.yaml', mode: 0o644, size: 1 }]);
  });

  it('refuses a staging path that is not a directory', async () => {
    const { root } = await staging();
    await writeFile(join(root, 'file'), '');
    const err = await errorOf(extractLayer(Readable.from(gzipSync(tarOf([]))), join(root, 'file'), { maxBytes: 10 }));
    expect(err.code).toBe('IO');
  });
});
