/**
 * Layers are gzip'd tar archives. Packing is reproducible (same file, same digest); extraction is
 * streaming and defensive: it writes only regular files and directories inside an empty staging dir,
 * and refuses absolute paths, `..`, links of any kind, devices, and content past a size limit.
 * Links are refused outright: rules files and plugins never need them, and a refused link cannot
 * point anywhere it should not.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join, normalize, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as tar from 'tar';
import { DiginfraError } from '../errors.js';

/** Tar's block size. */
const BLOCK = 512;

/** Executables keep an executable mode; everything else is 0644, whatever the packer's umask was. */
function normalizedMode(mode: number | undefined): number {
  return mode !== undefined && (mode & 0o111) !== 0 ? 0o755 : 0o644;
}

/**
 * Packs files into a tar.gz at `outFile`, entries at the archive root by basename, sorted, with mtime 0,
 * no owner data and normalized modes, so the digest depends only on names, modes and content. The
 * tar stream is written by hand (a header block per file, the content, padding): it streams, and no
 * packer default (umask, mtime, uid) can leak into the digest.
 */
export async function packLayer(files: readonly string[], outFile: string): Promise<{ digest: string; size: number }> {
  const sorted = [...files].sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
  const names = sorted.map((f) => basename(f));
  const dupe = names.find((n, i) => names.indexOf(n) !== i);
  if (dupe) throw new DiginfraError('USAGE', `two files named ${dupe}: a layer holds each name once`);
  const headers: Buffer[] = [];
  for (const file of sorted) {
    const st = await stat(file);
    if (!st.isFile()) throw new DiginfraError('USAGE', `${file} is not a regular file`);
    const header = new tar.Header({
      path: basename(file),
      mode: normalizedMode(st.mode),
      size: st.size,
      mtime: new Date(0),
      type: 'File',
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
    });
    const block = Buffer.alloc(BLOCK);
    if (header.encode(block, 0)) throw new DiginfraError('USAGE', `file name ${basename(file)} is too long for a layer (100 characters at most)`);
    headers.push(block);
  }
  async function* tarStream(): AsyncGenerator<Buffer> {
    for (const [i, file] of sorted.entries()) {
      yield headers[i]!;
      let written = 0;
      for await (const chunk of createReadStream(file)) {
        written += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      const pad = (BLOCK - (written % BLOCK)) % BLOCK;
      if (pad) yield Buffer.alloc(pad);
    }
    yield Buffer.alloc(BLOCK * 2);
  }
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  await pipeline(Readable.from(tarStream()), createGzip(), counter, createWriteStream(outFile, { mode: 0o644, flush: true }));
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

export interface ExtractLimits {
  /** Largest total of uncompressed file bytes. */
  maxBytes: number;
  /** Most entries (files and directories). */
  maxEntries?: number;
}

export interface ExtractedFile {
  rel: string;
  mode: number;
  size: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;

function unsafe(message: string): DiginfraError {
  return new DiginfraError('UNSAFE_ARCHIVE', message, { hint: 'the layer was refused and nothing was installed; ask the publisher to fix the artifact' });
}

/** Normalized relative path of an entry, or an error for anything that could leave the target. */
function safeRelative(path: string): string {
  if (path.includes('\0')) throw unsafe(`entry "${path.replace(/\0/g, '\\0')}" has a NUL byte in its name`);
  if (path.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(path) || path.startsWith('\\')) throw unsafe(`entry "${path}" has an absolute path`);
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`entry "${path}" leaves the target directory with ".."`);
  return posix.join(...(parts.length ? parts : ['.']));
}

/**
 * Extracts a tar or tar.gz stream into `stagingDir` (which should be empty and is the only place
 * written). On an error, what was written stays in the staging dir for the caller to delete.
 */
export async function extractLayer(input: Readable | NodeJS.ReadableStream, stagingDir: string, limits: ExtractLimits): Promise<ExtractedFile[]> {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const files: ExtractedFile[] = [];
  const writes: Promise<void>[] = [];
  let total = 0;
  let entries = 0;
  let failure: Error | undefined;
  const parser = new tar.Parser({ strict: true });

  const fail = (err: Error): void => {
    if (failure) return;
    failure = err;
    parser.abort(err);
    (input as Readable).destroy?.(err);
  };

  parser.on('entry', (entry: tar.ReadEntry) => {
    if (failure) return void entry.resume();
    try {
      entries++;
      if (entries > maxEntries) throw unsafe(`layer has more than ${maxEntries} entries`);
      const rel = safeRelative(entry.path);
      switch (entry.type) {
        case 'Directory':
          if (rel !== '.') writes.push(mkdir(join(stagingDir, rel), { recursive: true, mode: 0o755 }).then(() => undefined));
          entry.resume();
          return;
        case 'File':
        case 'OldFile':
        case 'ContiguousFile':
          break;
        case 'SymbolicLink':
        case 'Link':
          throw unsafe(`entry "${entry.path}" is a ${entry.type === 'Link' ? 'hard link' : 'symbolic link'} to "${entry.linkpath}"; links are not allowed in layers`);
        default:
          throw unsafe(`entry "${entry.path}" is a ${entry.type} entry; only files and directories are allowed`);
      }
      if (rel === '.') throw unsafe(`entry "${entry.path}" has no file name`);
      const declared = entry.size ?? 0;
      if (total + declared > limits.maxBytes) throw unsafe(`layer content exceeds the ${limits.maxBytes}-byte limit at "${entry.path}"`);
      total += declared;
      const target = join(stagingDir, normalize(rel));
      const mode = normalizedMode(entry.mode);
      files.push({ rel, mode, size: declared });
      writes.push(
        (async () => {
          await mkdir(dirname(target), { recursive: true, mode: 0o755 });
          await pipeline(entry as unknown as Readable, createWriteStream(target, { mode, flags: 'wx' }));
        })(),
      );
    } catch (err) {
      entry.resume();
      fail(err as Error);
    }
  });
  parser.on('warn', (code: string, message: string) => {
    if (code === 'TAR_ENTRY_INVALID' || code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT') fail(new DiginfraError('ARTIFACT_INVALID', `layer is not a valid tar archive: ${message}`));
  });

  try {
    await pipeline(input as Readable, parser as unknown as NodeJS.WritableStream);
  } catch (err) {
    if (failure) throw failure;
    if (err instanceof DiginfraError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (/^Z_|TAR_/.test(code) || /zlib|unexpected end|gzip/i.test((err as Error).message)) {
      throw new DiginfraError('ARTIFACT_INVALID', `layer is not a valid tar.gz: ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  const settled = await Promise.allSettled(writes);
  if (failure) throw failure;
  const rejected = settled.find((s) => s.status === 'rejected');
  if (rejected) {
    const reason = (rejected as PromiseRejectedResult).reason as NodeJS.ErrnoException;
    if (reason.code === 'EEXIST') throw unsafe(`layer holds the same file twice (${reason.path ?? ''})`);
    throw reason;
  }
  return files;
}
