/**
 * Layers are gzip'd tar archives.
 *
 * Packing is reproducible: the tar stream is written header by header (sorted entries at the archive
 * root, mtime 0, uid/gid 0, no user or group names, mode 0644 or 0755), gzip'd at a pinned level with
 * a zero gzip mtime and a fixed OS byte. The same files give the same digest on every push, so
 * followers see no change. (Deflate output is stable for a given zlib; the Node major is pinned.)
 *
 * Extraction is streaming and defensive. Policy:
 *  - only regular files and directories are written; everything else is refused with UNSAFE_ARCHIVE
 *    naming the entry: symbolic links and hard links of ANY target (rules files and plugins never need
 *    them, and a link that is never created cannot point anywhere), character/block devices, FIFOs,
 *    sparse/multi-volume and unknown entry types;
 *  - absolute paths, drive letters, `..` components and NUL bytes are refused (`\` counts as a
 *    separator, so `a\..\b` is refused too);
 *  - files get 0755 if any execute bit is set, else 0644; directories 0755; setuid/setgid/sticky bits,
 *    owners and mtimes of the archive are ignored;
 *  - the total of file sizes may not exceed `maxBytes` (checked from each header before its body is
 *    read), the number of entries `maxEntries`, and the decompressed tar stream as a whole (headers,
 *    padding, data after the end-of-archive marker) `maxBytes` plus a small allowance: a gzip bomb is
 *    stopped after inflating about `maxBytes`, never fully;
 *  - the same file twice in one archive is refused; a file already in the staging dir (from an
 *    earlier layer of the same artifact) is replaced, as later OCI layers override earlier ones.
 * Only `stagingDir` is written, and nothing is created through a link (none is ever created, and files
 * are opened with O_EXCL|O_NOFOLLOW). On any error, what was already written stays in the staging dir
 * for the caller to delete (removeDir); the promise settles only once no write is pending any more.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, lstat, mkdir, open, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
// tar's subpath exports: the parser, headers and pax, without its extract/create/list machinery.
import { Header } from 'tar/header';
import { Parser } from 'tar/parse';
import { Pax } from 'tar/pax';
import type { ReadEntry } from 'tar/read-entry';
import { DiginfraError } from '../errors.js';

/** Tar's block size. */
const BLOCK = 512;
/** Pinned: a different level would change every digest. */
const GZIP_LEVEL = 6;
/** Gzip header byte 9 (OS): 3 = Unix, whatever platform packed it. */
const GZIP_OS_UNIX = 3;

const DEFAULT_MAX_ENTRIES = 10_000;
/** Decompressed tar bytes allowed beyond `maxBytes`: end-of-archive blocks and record padding... */
const STREAM_ALLOWANCE = 1024 * 1024;
/** ...plus, per entry, a header, a pax header and padding. */
const PER_ENTRY_ALLOWANCE = 8 * 1024;
/** Bytes gathered before one writev while extracting. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * A large file is flushed to disk in the background every this many bytes while it is extracted, so
 * the fsync that must precede its rename (atomic-fs) finds little left to write: the disk works
 * while the rest downloads instead of after it.
 */
const BACKGROUND_SYNC_BYTES = 8 * 1024 * 1024;
/** Gunzip output chunks: larger than zlib's 16 KiB default, so fewer hand-offs per megabyte. */
const GUNZIP_CHUNK = 128 * 1024;
/** Compressed bytes handed to gunzip at a time (see tarBytes). */
const INFLATE_INPUT_BYTES = 256 * 1024;

/** Executables keep an executable mode; everything else is 0644, whatever the packer's umask was. */
function normalizedMode(mode: number | undefined): number {
  return mode !== undefined && (mode & 0o111) !== 0 ? 0o755 : 0o644;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An entry name safe to print: quoted, control characters escaped, long names shortened. */
function shown(path: string): string {
  const q = JSON.stringify(path);
  return q.length > 200 ? `${q.slice(0, 180)}…"` : q;
}

function unsafe(message: string): DiginfraError {
  return new DiginfraError('UNSAFE_ARCHIVE', message, { hint: 'the layer was refused and nothing was installed; ask the publisher to fix the artifact' });
}

function invalid(message: string, cause?: unknown): DiginfraError {
  return new DiginfraError('ARTIFACT_INVALID', message, {
    ...(cause !== undefined && { cause }),
    hint: 'the layer is damaged or not a tar.gz; nothing was installed (if it was downloaded, try again: a truncated download fails its digest check too)',
  });
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

export interface ExtractLimits {
  /** Largest total of uncompressed file bytes. */
  maxBytes: number;
  /** Most entries (files and directories); default 10 000. */
  maxEntries?: number;
}

export interface ExtractedFile {
  /** Path relative to the staging dir, `/`-separated, normalized (no `.`, no empty components). */
  rel: string;
  /** 0644, or 0755 when the archive marked it executable. */
  mode: number;
  size: number;
}

/** Normalized relative path of an entry, or UNSAFE_ARCHIVE for anything that could leave the target. */
function safeRelative(path: string): string {
  if (path.includes('\0')) throw unsafe(`entry ${shown(path)} has a NUL byte in its name`);
  if (path.startsWith('/') || path.startsWith('\\') || /^[a-zA-Z]:/.test(path)) throw unsafe(`entry ${shown(path)} has an absolute path`);
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`entry ${shown(path)} leaves the target directory with ".."`);
  return parts.join('/');
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/** Reads `input` to the end, gunzipping it when it starts with the gzip magic (plain tar otherwise). */
async function tarBytes(input: Readable | NodeJS.ReadableStream): Promise<Readable[]> {
  const it = (input as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  const toBuf = (c: Buffer | string): Buffer => (typeof c === 'string' ? Buffer.from(c) : c);
  let head = Buffer.alloc(0);
  try {
    while (head.length < 2) {
      const r = await it.next();
      if (r.done) break;
      head = Buffer.concat([head, toBuf(r.value)]);
    }
  } catch (err) {
    await it.return?.().catch(() => undefined);
    throw err;
  }
  // Socket reads (64 KiB) are gathered into pieces of up to 256 KiB: async gunzip costs a thread-pool
  // round trip per piece, and 1,600 round trips per 100 MB left the main thread waiting a third of
  // the time (1 MiB pieces were no faster and cost 15 MB of peak RSS). Pieces start small and double,
  // so a decompression bomb is caught after little input.
  async function* all(): AsyncGenerator<Buffer> {
    let pending: Buffer[] = head.length ? [head] : [];
    let pendingBytes = head.length;
    let target = 64 * 1024;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        const chunk = toBuf(r.value);
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= target) {
          yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          target = Math.min(target * 2, INFLATE_INPUT_BYTES);
        }
      }
      if (pendingBytes > 0) yield pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
    } finally {
      await it.return?.();
    }
  }
  const source = Readable.from(all(), { objectMode: false });
  return head[0] === 0x1f && head[1] === 0x8b ? [source, createGunzip({ chunkSize: GUNZIP_CHUNK })] : [source];
}

/** A stream error as we report it: gzip failures are ARTIFACT_INVALID, the input's own errors pass. */
function classified(err: unknown): Error {
  if (err instanceof DiginfraError) return err;
  const code = String((err as NodeJS.ErrnoException).code ?? '');
  if (code.startsWith('Z_') || code.startsWith('ERR_ZLIB')) {
    const what = /unexpected end/i.test(errMessage(err)) ? 'truncated gzip data' : 'corrupt gzip data';
    return invalid(`layer is not a valid tar.gz: ${what} (${errMessage(err)})`, err);
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Extracts a tar.gz (or plain tar) stream into `stagingDir` — see the file comment for the policy.
 * Returns the files written, in archive order. Errors: UNSAFE_ARCHIVE (naming the entry) for what the
 * policy refuses or a limit exceeded, ARTIFACT_INVALID for a corrupt or truncated archive, IO for a
 * local write failure; an error of `input` itself (network, digest check) is passed through.
 */
export async function extractLayer(input: Readable | NodeJS.ReadableStream, stagingDir: string, limits: ExtractLimits): Promise<ExtractedFile[]> {
  const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const root = resolve(stagingDir);
  const rootStat = await lstat(root).catch((err: unknown) => {
    throw new DiginfraError('IO', `staging directory ${root} is not usable: ${errMessage(err)}`, { cause: err });
  });
  if (!rootStat.isDirectory()) throw new DiginfraError('IO', `staging directory ${root} is not a directory`);

  const files = new Map<string, ExtractedFile>();
  /** Directories known to be real directories we may write in ('' = the staging dir). */
  const dirs = new Set<string>(['']);
  let entries = 0;
  let declared = 0;
  let written = 0;
  let rawBytes = 0;
  let sawEof = false;
  let failure: Error | undefined;
  /**
   * Rejects the read a write is waiting on when extraction stops early (no more entry data will come).
   * One fresh promise per read: racing every read against one long-lived promise would pin each chunk.
   */
  let cancelRead: ((err: Error) => void) | undefined;
  const stop = (err: Error): void => {
    cancelRead?.(err);
  };
  /** Entries are written one after the other, in archive order. */
  let chain: Promise<void> = Promise.resolve();

  const parser = new Parser({ strict: true });
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      rawBytes += chunk.length;
      const allowed = limits.maxBytes + STREAM_ALLOWANCE + entries * PER_ENTRY_ALLOWANCE;
      if (rawBytes > allowed) return cb(unsafe(`layer inflates to more than ${allowed} bytes of tar data (limit ${limits.maxBytes} bytes of content); refused as a possible decompression bomb`));
      // After the end-of-archive marker tar ignores everything; so do we (counted above, never buffered).
      if (sawEof) return cb();
      const ok = parser.write(chunk);
      if (failure) return cb(failure);
      if (ok) return cb();
      parser.once('drain', () => cb(failure));
    },
    final(cb) {
      parser.once('end', () => {
        chain.then(
          () => cb(failure),
          (err: Error) => cb(err),
        );
      });
      parser.end();
    },
  });

  const fail = (err: Error): void => {
    if (failure) return;
    failure = err;
    stop(err);
    sink.destroy(err);
  };

  parser.on('eof', () => {
    sawEof = true;
  });
  parser.on('error', (err: Error & { tarCode?: string }) => {
    // An archive without a single entry (only end-of-archive blocks) is empty, not invalid.
    if (sawEof && entries === 0 && /Unrecognized archive format/.test(err.message)) return;
    fail(invalid(`layer is not a valid tar archive: ${err.message.replace(/^TAR_[A-Z_]+: /, '')}`, err));
  });

  parser.on('entry', (entry: ReadEntry) => {
    if (failure) return void entry.resume();
    let rel: string;
    let isDir: boolean;
    try {
      entries++;
      if (entries > maxEntries) throw unsafe(`layer has more than ${maxEntries} entries (at ${shown(entry.path)})`);
      rel = safeRelative(entry.path);
      if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
        throw unsafe(`entry ${shown(entry.path)} is a ${entry.type === 'Link' ? 'hard link' : 'symbolic link'} to ${shown(entry.linkpath ?? '')}; links are not allowed in layers`);
      }
      isDir = entry.type === 'Directory';
      if (!isDir && !FILE_TYPES.has(entry.type)) throw unsafe(`entry ${shown(entry.path)} is a ${entry.type} entry; only files and directories are allowed`);
      if (!isDir) {
        if (rel === '') throw unsafe(`entry ${shown(entry.path)} is a file without a name`);
        if (files.has(rel)) throw unsafe(`entry ${shown(entry.path)} appears twice in the layer`);
        const size = entry.size ?? 0;
        if (declared + size > limits.maxBytes) {
          throw unsafe(`layer content exceeds the ${limits.maxBytes}-byte limit at ${shown(entry.path)} (${size} bytes)`);
        }
        declared += size;
        files.set(rel, { rel, mode: normalizedMode(entry.mode), size });
      }
    } catch (err) {
      entry.resume();
      return fail(err as Error);
    }
    chain = chain
      .then(async () => {
        if (failure) return void entry.resume();
        if (isDir) {
          await ensureDir(rel, entry.path);
          entry.resume();
        } else {
          await writeFile(entry, rel);
        }
      })
      .catch((err: unknown) => {
        entry.resume();
        fail(err instanceof DiginfraError ? err : new DiginfraError('IO', `cannot write ${shown(entry.path)} into ${root}: ${errMessage(err)}`, { cause: err }));
      });
  });

  /** Creates `rel` and its parents as real directories (0755), refusing anything else in the way. */
  async function ensureDir(rel: string, entryPath: string): Promise<void> {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (dirs.has(sub)) continue;
      const abs = join(root, ...parts.slice(0, i));
      try {
        await mkdir(abs, { mode: 0o755 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await lstat(abs);
        if (!st.isDirectory()) throw unsafe(`entry ${shown(entryPath)} needs ${shown(sub)} to be a directory, but the layer made it a file`);
      }
      await chmod(abs, 0o755);
      dirs.add(sub);
    }
  }

  async function writeFile(entry: ReadEntry, rel: string): Promise<void> {
    const file = files.get(rel)!;
    const parts = rel.split('/');
    await ensureDir(parts.slice(0, -1).join('/'), entry.path);
    const abs = join(root, ...parts);
    if (!abs.startsWith(root + sep)) throw unsafe(`entry ${shown(entry.path)} leaves the target directory`);
    // A file from an earlier layer is replaced; a directory in the way is not.
    const existing = await lstat(abs).catch(() => undefined);
    if (existing?.isDirectory()) throw unsafe(`entry ${shown(entry.path)} is a file, but the layer made ${shown(rel)} a directory`);
    if (existing) await unlink(abs);
    let fh: FileHandle | undefined;
    let syncing: Promise<void> | undefined;
    try {
      fh = await open(abs, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, file.mode);
      const handle = fh;
      let size = 0;
      let syncedUpTo = 0;
      // One flush at a time; its error is kept and thrown below: a later fsync on another descriptor
      // may not report a write-back error this one saw.
      let syncError: unknown;
      const backgroundSync = (): void => {
        if (syncing !== undefined || size - syncedUpTo < BACKGROUND_SYNC_BYTES) return;
        syncedUpTo = size;
        syncing = handle
          .datasync()
          .catch((err: unknown) => {
            syncError ??= err;
          })
          .finally(() => {
            syncing = undefined;
          });
      };
      // Chunks are written in batches: one writev per ~1 MiB instead of one write per 16 KiB chunk.
      let batch: Buffer[] = [];
      let batchBytes = 0;
      const chunks = (entry as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
      const read = (): Promise<IteratorResult<Buffer>> =>
        new Promise((resolveRead, rejectRead) => {
          if (failure) return rejectRead(failure);
          cancelRead = rejectRead;
          chunks.next().then(resolveRead, rejectRead);
        });
      for (let next = await read(); !next.done; next = await read()) {
        const chunk = next.value;
        size += chunk.length;
        written += chunk.length;
        if (size > file.size || written > limits.maxBytes) throw unsafe(`entry ${shown(entry.path)} holds more bytes than its header says`);
        batch.push(chunk);
        batchBytes += chunk.length;
        if (batchBytes >= WRITE_BATCH_BYTES) {
          await fh.writev(batch);
          batch = [];
          batchBytes = 0;
          backgroundSync();
        }
      }
      if (failure) throw failure;
      if (batch.length) await fh.writev(batch);
      if (syncing) await syncing;
      if (syncError !== undefined) throw syncError;
      if (size !== file.size) throw invalid(`layer is not a valid tar archive: entry ${shown(entry.path)} is truncated`);
      await fh.chmod(file.mode);
    } finally {
      cancelRead = undefined;
      // Never close a handle with a flush still running on it.
      await syncing;
      await fh?.close();
    }
  }

  try {
    await pipeline([...(await tarBytes(input)), sink]);
  } catch (err) {
    failure ??= classified(err);
    // Settle every pending write before reporting, so nothing is written after we return.
    stop(failure);
    await chain.catch(() => undefined);
    throw failure;
  }
  await chain;
  if (failure) throw failure;
  return [...files.values()];
}
