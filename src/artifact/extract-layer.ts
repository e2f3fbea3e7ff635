/**
 * Safe extraction of a layer (a gzip'd tar, or a plain tar), streaming and defensive. Policy:
 *  - only regular files and directories are written; everything else is refused with UNSAFE_ARCHIVE
 *    naming the entry: symbolic links and hard links of ANY target (rules files and plugins never need
 *    them, and a link that is never created cannot point anywhere), character/block devices, FIFOs,
 *    sparse/multi-volume and unknown entry types;
 *  - absolute paths, drive letters, `..` components, NUL bytes and other control characters (a
 *    newline in a name would spoof lines of output) are refused (`\` counts as a separator, so
 *    `a\..\b` is refused too);
 *  - files get 0755 if any execute bit is set, else 0644; directories 0755; setuid/setgid/sticky bits,
 *    owners and mtimes of the archive are ignored;
 *  - the total of file sizes may not exceed `maxBytes` (checked from each header before its body is
 *    read), the number of entries `maxEntries`, and the decompressed tar stream as a whole (headers,
 *    padding, data after the end-of-archive marker) `maxBytes` plus a small allowance: a gzip bomb is
 *    stopped after inflating about `maxBytes`, never fully;
 *  - the same file twice in one archive is refused; a file already in the staging dir (from an
 *    earlier layer of the same artifact) is replaced, as later OCI layers override earlier ones.
 * checkLayer applies the same checks to a layer without writing anything (`repo push` runs it).
 * Only `stagingDir` is written, and nothing is created through a link (none is ever created, and files
 * are opened with O_EXCL|O_NOFOLLOW). Every check of an entry runs when its header arrives, before
 * anything of it is created. On any error, what was already written stays in the staging dir for the
 * caller to delete (removeDir); the promise settles only once no write is pending any more.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, lstat, mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
// tar's subpath exports: the parser, without its extract/create/list machinery.
import { Parser } from 'tar/parse';
import type { ReadEntry } from 'tar/read-entry';
import { DiginfraError, messageOf } from '../errors.js';
import { normalizedMode } from './archive.js';
import { entryKind, invalid, refuseLink, safeRelative, shown, unsafe } from './extract-checks.js';
import { classified, tarBytes } from './tar-input.js';

const DEFAULT_MAX_ENTRIES = 10_000;
/** Decompressed tar bytes allowed beyond `maxBytes`: end-of-archive blocks and record padding... */
const STREAM_ALLOWANCE = 1024 * 1024;
/** ...plus, per entry, a header, a pax header and padding. */
const PER_ENTRY_ALLOWANCE = 8 * 1024;
/** Bytes gathered before one writev while extracting. */
const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * A large file is flushed to disk in the background every this many bytes while it is extracted, so
 * the fsync that must precede its rename (util placeFiles) finds little left to write: the disk works
 * while the rest downloads instead of after it.
 */
const BACKGROUND_SYNC_BYTES = 8 * 1024 * 1024;

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

/** The staging dir as an absolute path, once checked to be a real directory. */
async function usableStagingDir(stagingDir: string): Promise<string> {
  const root = resolve(stagingDir);
  const st = await lstat(root).catch((err: unknown) => {
    throw new DiginfraError('IO', `staging directory ${root} is not usable: ${messageOf(err)}`, { cause: err });
  });
  if (!st.isDirectory()) throw new DiginfraError('IO', `staging directory ${root} is not a directory`);
  return root;
}

/**
 * Flushes of a file being written, in the background, one at a time. A flush error is kept and
 * thrown by `finish`: a later fsync on another descriptor may not report a write-back error this
 * one saw.
 */
class BackgroundFlush {
  #running: Promise<void> | undefined;
  #flushedUpTo = 0;
  #error: unknown;
  readonly #fh: FileHandle;

  constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  /** Starts a flush when BACKGROUND_SYNC_BYTES were written since the last one and none is running. */
  maybeStart(written: number): void {
    if (this.#running !== undefined || written - this.#flushedUpTo < BACKGROUND_SYNC_BYTES) return;
    this.#flushedUpTo = written;
    this.#running = this.#fh
      .datasync()
      .catch((err: unknown) => {
        this.#error ??= err;
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Waits for the running flush, then throws the first flush error, if any. */
  async finish(): Promise<void> {
    if (this.#running) await this.#running;
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits for the running flush (never rejects): a handle is never closed with a flush running on it. */
  async settled(): Promise<void> {
    await this.#running;
  }
}

/** One extractLayer call: the tar parser, what it admitted so far, and the writes in progress. */
class LayerExtraction {
  readonly #root: string;
  readonly #maxBytes: number;
  readonly #maxEntries: number;
  readonly #files = new Map<string, ExtractedFile>();
  /** Directories known to be real directories we may write in ('' = the staging dir). */
  readonly #dirs = new Set<string>(['']);
  /** Directories the archive's entries declare or imply so far. */
  readonly #treeDirs = new Set<string>();
  /** False for checkLayer: entries are checked and their data skipped, nothing is written. */
  readonly #write: boolean;
  #entries = 0;
  /** File sizes as their headers declare them. */
  #declared = 0;
  /** File bytes actually written. */
  #written = 0;
  /** Decompressed tar bytes seen. */
  #rawBytes = 0;
  #sawEof = false;
  #failure: Error | undefined;
  /**
   * Rejects the read a write is waiting on when extraction stops early (no more entry data will come).
   * One fresh promise per read: racing every read against one long-lived promise would pin each chunk.
   */
  #cancelRead: ((err: Error) => void) | undefined;
  /** Entries are written one after the other, in archive order. */
  #chain: Promise<void> = Promise.resolve();
  readonly #parser = new Parser({ strict: true });
  readonly #sink: Writable;

  constructor(root: string | undefined, limits: ExtractLimits) {
    this.#root = root ?? '';
    this.#write = root !== undefined;
    this.#maxBytes = limits.maxBytes;
    this.#maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.#sink = this.#tarSink();
    this.#parser.on('eof', () => {
      this.#sawEof = true;
    });
    this.#parser.on('error', (err: Error) => this.#onParseError(err));
    this.#parser.on('entry', (entry: ReadEntry) => this.#onEntry(entry));
  }

  async run(input: Readable | NodeJS.ReadableStream): Promise<ExtractedFile[]> {
    try {
      await pipeline([...(await tarBytes(input)), this.#sink]);
    } catch (err) {
      const failure = (this.#failure ??= classified(err));
      // Settle every pending write before reporting, so nothing is written after we return.
      this.#stop(failure);
      await this.#chain.catch(() => undefined);
      throw failure;
    }
    await this.#chain;
    if (this.#failure) throw this.#failure;
    return [...this.#files.values()];
  }

  /** The tar stream's end: counted against the inflated-size limit, then fed to the parser. */
  #tarSink(): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        const bomb = this.#overInflated(chunk.length);
        if (bomb) return cb(bomb);
        // After the end-of-archive marker tar ignores everything; so do we (counted above, never buffered).
        if (this.#sawEof) return cb();
        const ok = this.#parser.write(chunk);
        if (this.#failure) return cb(this.#failure);
        if (ok) return cb();
        this.#parser.once('drain', () => cb(this.#failure));
      },
      final: (cb) => {
        this.#parser.once('end', () => {
          this.#chain.then(
            () => cb(this.#failure),
            (err: Error) => cb(err),
          );
        });
        this.#parser.end();
      },
    });
  }

  /** Limit on the decompressed tar stream: the error once it inflates past `maxBytes` plus the allowance. */
  #overInflated(bytes: number): DiginfraError | undefined {
    this.#rawBytes += bytes;
    const allowed = this.#maxBytes + STREAM_ALLOWANCE + this.#entries * PER_ENTRY_ALLOWANCE;
    if (this.#rawBytes <= allowed) return undefined;
    return unsafe(`layer inflates to more than ${allowed} bytes of tar data (limit ${this.#maxBytes} bytes of content); refused as a possible decompression bomb`);
  }

  /** The first failure wins: the pending read is cancelled and the stream destroyed. */
  #fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    this.#stop(err);
    this.#sink.destroy(err);
  }

  #stop(err: Error): void {
    this.#cancelRead?.(err);
  }

  #onParseError(err: Error): void {
    // An archive without a single entry (only end-of-archive blocks) is empty, not invalid.
    if (this.#sawEof && this.#entries === 0 && /Unrecognized archive format/.test(err.message)) return;
    this.#fail(invalid(`layer is not a valid tar archive: ${err.message.replace(/^TAR_[A-Z_]+: /, '')}`, err));
  }

  /** Checks the entry at once (from its header), then queues its write behind the entries before it. */
  #onEntry(entry: ReadEntry): void {
    if (this.#failure) return void entry.resume();
    let admitted: { rel: string; kind: 'dir' | 'file' };
    try {
      admitted = this.#admit(entry);
    } catch (err) {
      entry.resume();
      return this.#fail(err as Error);
    }
    const { rel, kind } = admitted;
    if (!this.#write) return void entry.resume();
    this.#chain = this.#chain
      .then(async () => {
        if (this.#failure) return void entry.resume();
        if (kind === 'dir') {
          await this.#ensureDir(rel, entry.path);
          entry.resume();
        } else {
          await this.#writeFile(entry, rel);
        }
      })
      .catch((err: unknown) => {
        entry.resume();
        this.#fail(err instanceof DiginfraError ? err : new DiginfraError('IO', `cannot write ${shown(entry.path)} into ${this.#root}: ${messageOf(err)}`, { cause: err }));
      });
  }

  /** Every check of an entry, in order: count, name, links, type, the shape of the tree, and for a file its name and size. */
  #admit(entry: ReadEntry): { rel: string; kind: 'dir' | 'file' } {
    this.#entries++;
    if (this.#entries > this.#maxEntries) throw unsafe(`layer has more than ${this.#maxEntries} entries (at ${shown(entry.path)})`);
    const rel = safeRelative(entry.path);
    refuseLink(entry);
    const kind = entryKind(entry);
    this.#admitShape(entry, rel, kind);
    if (kind === 'file') this.#admitFile(entry, rel);
    return { rel, kind };
  }

  /**
   * Within the archive, a path is a file or a directory, never both (checked from the headers, so
   * checkLayer sees it too; across layers the file system tells, in #ensureDir and #fileTarget).
   */
  #admitShape(entry: ReadEntry, rel: string, kind: 'dir' | 'file'): void {
    const parts = rel === '' ? [] : rel.split('/');
    const dirs = parts.map((_, i) => parts.slice(0, i + 1).join('/')).slice(0, kind === 'dir' ? parts.length : -1);
    const asFile = dirs.find((d) => this.#files.has(d));
    if (asFile !== undefined) throw unsafe(`entry ${shown(entry.path)} needs ${shown(asFile)} to be a directory, but the layer made it a file`);
    if (kind === 'file' && this.#treeDirs.has(rel)) throw unsafe(`entry ${shown(entry.path)} is a file, but the layer made ${shown(rel)} a directory`);
    for (const d of dirs) this.#treeDirs.add(d);
  }

  /** A file entry: it has a name, appears once, and its declared size fits the byte limit. */
  #admitFile(entry: ReadEntry, rel: string): void {
    if (rel === '') throw unsafe(`entry ${shown(entry.path)} is a file without a name`);
    if (this.#files.has(rel)) throw unsafe(`entry ${shown(entry.path)} appears twice in the layer`);
    const size = entry.size ?? 0;
    if (this.#declared + size > this.#maxBytes) {
      throw unsafe(`layer content exceeds the ${this.#maxBytes}-byte limit at ${shown(entry.path)} (${size} bytes)`);
    }
    this.#declared += size;
    this.#files.set(rel, { rel, mode: normalizedMode(entry.mode), size });
  }

  /**
   * `parts` joined under the staging dir, or UNSAFE_ARCHIVE when that leaves it. The names were
   * checked when the header arrived (safeRelative); this second guard runs before anything is
   * created, so no directory outside staging is ever made, even for a name the first one let by.
   */
  #inside(parts: readonly string[], entryPath: string): string {
    const abs = resolve(this.#root, ...parts);
    if (!abs.startsWith(this.#root + sep)) throw unsafe(`entry ${shown(entryPath)} leaves the target directory`);
    return abs;
  }

  /** Creates `rel` and its parents as real directories (0755), refusing anything else in the way. */
  async #ensureDir(rel: string, entryPath: string): Promise<void> {
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 1; i <= parts.length; i++) this.#inside(parts.slice(0, i), entryPath);
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (this.#dirs.has(sub)) continue;
      const abs = join(this.#root, ...parts.slice(0, i));
      try {
        await mkdir(abs, { mode: 0o755 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await lstat(abs);
        if (!st.isDirectory()) throw unsafe(`entry ${shown(entryPath)} needs ${shown(sub)} to be a directory, but the layer made it a file`);
      }
      await chmod(abs, 0o755);
      this.#dirs.add(sub);
    }
  }

  /** Where file `rel` goes, its parents made: a file of an earlier layer there is removed, a directory refused. */
  async #fileTarget(entry: ReadEntry, rel: string): Promise<string> {
    const parts = rel.split('/');
    const abs = this.#inside(parts, entry.path);
    await this.#ensureDir(parts.slice(0, -1).join('/'), entry.path);
    const existing = await lstat(abs).catch(() => undefined);
    if (existing?.isDirectory()) throw unsafe(`entry ${shown(entry.path)} is a file, but the layer made ${shown(rel)} a directory`);
    if (existing) await unlink(abs);
    return abs;
  }

  /** Writes a file entry to a new file (never through a link), checks its length, then sets its mode. */
  async #writeFile(entry: ReadEntry, rel: string): Promise<void> {
    const file = this.#files.get(rel)!;
    const abs = await this.#fileTarget(entry, rel);
    let fh: FileHandle | undefined;
    let flush: BackgroundFlush | undefined;
    try {
      fh = await open(abs, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, file.mode);
      flush = new BackgroundFlush(fh);
      const size = await this.#copyData(entry, fh, file, flush);
      await flush.finish();
      if (size !== file.size) throw invalid(`layer is not a valid tar archive: entry ${shown(entry.path)} is truncated`);
      await fh.chmod(file.mode);
    } finally {
      this.#cancelRead = undefined;
      await flush?.settled();
      await fh?.close();
    }
  }

  /**
   * The entry's data into `fh`, one writev per ~1 MiB instead of one write per 16 KiB chunk, never
   * more than its header declared nor than the byte limit. Returns the bytes written.
   */
  async #copyData(entry: ReadEntry, fh: FileHandle, file: ExtractedFile, flush: BackgroundFlush): Promise<number> {
    let size = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const chunks = (entry as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    for (let next = await this.#read(chunks); !next.done; next = await this.#read(chunks)) {
      const chunk = next.value;
      size += chunk.length;
      this.#written += chunk.length;
      if (size > file.size || this.#written > this.#maxBytes) throw unsafe(`entry ${shown(entry.path)} holds more bytes than its header says`);
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= WRITE_BATCH_BYTES) {
        await fh.writev(batch);
        batch = [];
        batchBytes = 0;
        flush.maybeStart(size);
      }
    }
    if (this.#failure) throw this.#failure;
    if (batch.length) await fh.writev(batch);
    return size;
  }

  /** The next chunk of an entry, or the failure as soon as extraction stops. */
  #read(chunks: AsyncIterator<Buffer>): Promise<IteratorResult<Buffer>> {
    return new Promise((resolveRead, rejectRead) => {
      if (this.#failure) return rejectRead(this.#failure);
      this.#cancelRead = rejectRead;
      chunks.next().then(resolveRead, rejectRead);
    });
  }
}

/**
 * Extracts a tar.gz (or plain tar) stream into `stagingDir` — see the file comment for the policy.
 * Returns the files written, in archive order. Errors: UNSAFE_ARCHIVE (naming the entry) for what the
 * policy refuses or a limit exceeded, ARTIFACT_INVALID for a corrupt or truncated archive, IO for a
 * local write failure; an error of `input` itself (network, digest check) is passed through.
 */
export async function extractLayer(input: Readable | NodeJS.ReadableStream, stagingDir: string, limits: ExtractLimits): Promise<ExtractedFile[]> {
  const root = await usableStagingDir(stagingDir);
  return new LayerExtraction(root, limits).run(input);
}

/**
 * Checks a layer by the rules of extractLayer, writing nothing: every entry header is admitted or
 * refused exactly as extraction would (same code), the data is read and skipped. What `repo push`
 * runs on a .tar.gz before uploading it, so that no consumer is the first to refuse it. Returns the
 * files the layer holds; errors as extractLayer's (UNSAFE_ARCHIVE, ARTIFACT_INVALID).
 */
export async function checkLayer(input: Readable | NodeJS.ReadableStream, limits: ExtractLimits): Promise<ExtractedFile[]> {
  return new LayerExtraction(undefined, limits).run(input);
}
