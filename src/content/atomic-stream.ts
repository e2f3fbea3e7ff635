/**
 * The streaming counterpart of util/atomic-fs.ts's writeFileAtomic, for content too large to hold in
 * memory: the stream goes into a temp file beside `path` (same directory, so same filesystem), which
 * is fsynced, renamed over `path`, and the directory fsynced. `path` is absent or complete, never part.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir } from '../util/atomic-fs.js';

/** `.<name>.tmp-<12 hex>` beside `path`: writeFileAtomic's temp names, so one sweep finds both. */
function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
}

/**
 * Writes what `open` streams to `path` atomically. `open` is called once the temp file's directory
 * exists and its stream is piped at once, so an error it emits always has a listener. The stream's
 * own errors are rethrown as they are (a SIZE_MISMATCH stays one); the temp file is removed.
 */
export async function writeStreamAtomic(path: string, open: () => Promise<Readable>, opts: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = tempName(path);
  try {
    const source = await open();
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
