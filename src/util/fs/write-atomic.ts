/**
 * Writes that a reader never sees half done. The engine reloads on any change to its rules dirs, so
 * a file appears by ONE rename of a complete, fsynced file in the same directory, under a temporary
 * name the engine ignores (dot-prefixed, never `*.yaml`). After the rename the directory is fsynced
 * too, so after a crash the disk holds the old file or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
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

/**
 * Replaces `path` with `data`: a temp file beside it is written, fsynced and chmod'ed (the mode is
 * exact, whatever the umask; default 0644), renamed over `path`, then the directory is fsynced. A
 * reader sees the old content or the new, never a part. On failure the temp file is removed and
 * `path` is untouched. The parent directory is created when missing.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const dir = dirname(path);
  const tmp = tempName(path);
  try {
    await mkdir(dir, { recursive: true });
    // 'wx': never follows or reuses an existing name; the mode (0600 for secrets) applies from creation.
    const fh = await open(tmp, 'wx', mode & 0o777);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new DiginfraError('IO', `cannot write ${path}: ${messageOf(err)}`, {
      cause: err,
      hint: `${path} was left as it was; check that ${dir} exists, is writable and has free space`,
    });
  }
  await fsyncDir(dir);
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
