/**
 * Writes that a reader never sees half done. The engine reloads on any change to its rules dirs, so
 * a file appears by ONE rename of a complete, fsynced file in the same directory, under a temporary
 * name the engine ignores (dot-prefixed, never `*.yaml`). After the rename the directory is fsynced
 * too, so after a crash the disk holds the old file or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DiginfraError, messageOf } from '../../errors.js';
import { fsyncDir } from './fsync.js';

/** `writeFileAtomic`'s temp names, `.<name>.tmp-<12 hex>`: what sweepStaleStaging removes after a crash. */
export const ATOMIC_TEMP_RE = /^\..+\.tmp-[0-9a-f]{12}$/;

/** `.<name>.tmp-<random>` beside `path`: same directory (so same filesystem), ignored by the engine. */
function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
}

/** A file written piece by piece and published by one rename: until `commit`, `path` is untouched. */
export interface AtomicFile {
  readonly path: string;
  /**
   * Appends bytes to the temp file. Small pieces are copied into a buffer of the file's own and
   * written when it fills (WRITE_BUFFER). Calls are awaited one after the other.
   */
  write(data: string | Uint8Array): Promise<void>;
  /** fsync, exact mode, rename over `path`, fsync of the directory. The temp file is gone either way. */
  commit(): Promise<void>;
  /** Removes the temp file; `path` stays as it was. Never throws; safe to call after commit. */
  abort(): Promise<void>;
}

/**
 * The write buffer of an AtomicFile: small pieces (one index entry's JSON) are copied here and written
 * 64 KiB at a time, one write call per few hundred entries rather than one each, and the caller's
 * strings are dropped at once instead of waiting in a queue for their write.
 */
const WRITE_BUFFER = 64 * 1024;

function writeFailed(path: string, err: unknown): DiginfraError {
  if (err instanceof DiginfraError && err.message.startsWith(`cannot write ${path}:`)) return err;
  return new DiginfraError('IO', `cannot write ${path}: ${messageOf(err)}`, {
    cause: err,
    hint: `${path} was left as it was; check that ${dirname(path)} exists, is writable and has free space`,
  });
}

/**
 * Opens `path` for an atomic replacement written in pieces (a cache file built while its source is
 * read, so that the whole never has to be in memory): a temp file beside it, created with 'wx' (never
 * follows or reuses an existing name) and the mode from creation (0600 for secrets; default 0644,
 * exact whatever the umask). The parent directory is created when missing. A failed write removes
 * the temp file and throws IO.
 */
export async function openAtomicFile(path: string, opts: { mode?: number } = {}): Promise<AtomicFile> {
  const mode = opts.mode ?? 0o644;
  const dir = dirname(path);
  const tmp = tempName(path);
  let opened: FileHandle;
  try {
    await mkdir(dir, { recursive: true });
    opened = await open(tmp, 'wx', mode & 0o777);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw writeFailed(path, err);
  }
  const fh = opened;
  let buffer: Buffer | undefined;
  let used = 0;
  let done = false;
  const abort = async (): Promise<void> => {
    if (done) return;
    done = true;
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
  };
  const flush = async (): Promise<void> => {
    if (used === 0) return;
    const n = used;
    used = 0;
    await fh.write(buffer!, 0, n);
  };
  const fail = async (err: unknown): Promise<never> => {
    await abort();
    throw writeFailed(path, err);
  };
  return {
    path,
    async write(data) {
      if (done) return fail(new Error('already committed or aborted'));
      try {
        const size = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
        if (size > WRITE_BUFFER) {
          await flush();
          await fh.writeFile(data);
          return;
        }
        if (used + size > WRITE_BUFFER) await flush();
        buffer ??= Buffer.allocUnsafe(WRITE_BUFFER);
        if (typeof data === 'string') buffer.write(data, used);
        else buffer.set(data, used);
        used += size;
      } catch (err) {
        await fail(err);
      }
    },
    async commit() {
      if (done) return fail(new Error('already committed or aborted'));
      try {
        await flush();
        await fh.chmod(mode);
        await fh.sync();
        await fh.close();
        await rename(tmp, path);
        done = true;
      } catch (err) {
        await fail(err);
      }
      await fsyncDir(dir);
    },
    abort,
  };
}

/**
 * Replaces `path` with `data`: a temp file beside it is written, fsynced and chmod'ed (the mode is
 * exact, whatever the umask; default 0644), renamed over `path`, then the directory is fsynced. A
 * reader sees the old content or the new, never a part. On failure the temp file is removed and
 * `path` is untouched. The parent directory is created when missing.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const file = await openAtomicFile(path, opts);
  await file.write(data);
  await file.commit();
}

/**
 * The streaming counterpart of writeFileAtomic, for content too large to hold in memory (a layer
 * ingested into the blob cache): what `openSource` streams is written to `path` atomically, the same
 * way. `openSource` is called once the temp file's directory exists and its stream is piped at once,
 * so an error it emits always has a listener. The stream's own errors are rethrown as they are (a
 * SIZE_MISMATCH stays one); the temp file is removed.
 */
export async function writeStreamAtomic(path: string, openSource: () => Promise<Readable>, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = tempName(path);
  try {
    const source = await openSource();
    // 'wx': never follows or reuses an existing name. `flush` fsyncs before close, so the rename
    // publishes complete bytes.
    await pipeline(source, createWriteStream(tmp, { flags: 'wx', mode: opts.mode ?? 0o644, flush: true }));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}
