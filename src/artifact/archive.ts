/**
 * Layers are gzip'd tar archives.
 *
 * Packing is reproducible: the tar stream is written header by header (sorted entries at the archive
 * root, mtime 0, uid/gid 0, no user or group names, mode 0644 or 0755), gzip'd at a pinned level with
 * a zero gzip mtime and a fixed OS byte. The same files give the same digest on every push, so
 * followers see no change. (Deflate output is stable for a given zlib; the Node major is pinned.)
 *
 * Extraction, the defensive half, is extract-layer.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
// tar's subpath exports: headers and pax, without its extract/create/list machinery.
import { Header } from 'tar/header';
import { Pax } from 'tar/pax';
import { DiginfraError } from '../errors.js';

/** Tar's block size. */
const BLOCK = 512;
/** Pinned: a different level would change every digest. */
const GZIP_LEVEL = 6;
/** Gzip header byte 9 (OS): 3 = Unix, whatever platform packed it. */
const GZIP_OS_UNIX = 3;

/** Executables keep an executable mode; everything else is 0644, whatever the packer's umask was. */
export function normalizedMode(mode: number | undefined): number {
  return mode !== undefined && (mode & 0o111) !== 0 ? 0o755 : 0o644;
}

/** The header block(s) of one file: a pax header first when the name does not fit ustar. */
function fileHeader(name: string, mode: number, size: number): Buffer {
  const data = { path: name, mode, size, mtime: new Date(0), type: 'File' as const, uid: 0, gid: 0, uname: '', gname: '' };
  const block = Buffer.alloc(BLOCK);
  const needPax = new Header(data).encode(block, 0);
  if (!needPax) return block;
  const pax = new Pax({ path: name, mtime: new Date(0) }).encode();
  return Buffer.concat([pax, block]);
}

interface PackEntry {
  file: string;
  name: string;
  header: Buffer;
  size: number;
  mtimeMs: number;
}

/**
 * Packs regular files into a tar.gz at `outFile`, entries at the archive root by basename, sorted by
 * name (byte order). The output is written to a temp file beside `outFile` and renamed into place, so
 * a failure leaves no partial `outFile`. Returns the digest (sha256 of the gzip bytes) and size.
 * Errors: USAGE for no files, a duplicate name, or a path that is not a regular file; IO when a file
 * changes while it is being packed. A missing file rejects with the fs ENOENT error.
 */
export async function packLayer(files: readonly string[], outFile: string): Promise<{ digest: string; size: number }> {
  if (files.length === 0) throw new DiginfraError('USAGE', 'nothing to pack: a layer needs at least one file');
  const sorted = [...files].sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
  const entries: PackEntry[] = [];
  for (const [i, file] of sorted.entries()) {
    const name = basename(file);
    if (i > 0 && name === entries[i - 1]!.name) throw new DiginfraError('USAGE', `two files named ${name}: a layer holds each name once`);
    const st = await stat(file);
    if (!st.isFile()) throw new DiginfraError('USAGE', `${file} is not a regular file; a layer holds files only (pack a directory's files, or push a .tar.gz)`);
    entries.push({ file, name, header: fileHeader(name, normalizedMode(st.mode), st.size), size: st.size, mtimeMs: st.mtimeMs });
  }

  async function* tarStream(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      yield e.header;
      const fh = await open(e.file, 'r');
      try {
        const chunk = Buffer.alloc(64 * 1024);
        let done = 0;
        while (done < e.size) {
          const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, e.size - done), done);
          if (bytesRead === 0) break;
          done += bytesRead;
          // A copy: the consumer may hold the chunk while we read the next one into our buffer.
          yield Buffer.from(chunk.subarray(0, bytesRead));
        }
        const after = await fh.stat();
        if (done !== e.size || after.size !== e.size || after.mtimeMs !== e.mtimeMs) {
          throw new DiginfraError('IO', `${e.file} changed while it was being packed`, { hint: 'wait until it is written completely, then push again' });
        }
      } finally {
        await fh.close();
      }
      const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
      if (pad) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(BLOCK * 2);
  }

  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (size === 0 && chunk.length > 9) chunk[9] = GZIP_OS_UNIX;
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const tmp = join(dirname(outFile), `.${basename(outFile)}.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const out = await open(tmp, 'wx', 0o644);
    await pipeline(Readable.from(tarStream()), createGzip({ level: GZIP_LEVEL }), counter, out.createWriteStream({ flush: true }));
    await rename(tmp, outFile);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}
