/**
 * Download progress of blobs, shared by the commands that fetch layers: on a TTY, a byte counter
 * redrawn with \r (at most every 100 ms) and a final line per blob; elsewhere, one log line per blob.
 */
import type { BlobEvent } from '../install/index.js';
import type { CliContext } from './run.js';

export function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** Per-blob progress: a byte counter redrawn with \r on a TTY; one log line per blob elsewhere. */
export function progressReporter(ctx: CliContext, quiet: boolean): (e: BlobEvent) => void {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  return (e) => {
    const short = e.digest.replace(/^sha256:/, '').slice(0, 12);
    if (!tty) {
      if (e.kind === 'done') ctx.logger.info({ artifact: e.artifact, digest: e.digest, size: e.size, cached: e.cached }, e.cached ? 'blob in cache' : 'blob downloaded');
      return;
    }
    if (quiet) return;
    const line = (bytes: number): string => `  ${e.artifact} ${short} ${human(bytes)} / ${human(e.size)}`;
    if (e.kind === 'start') {
      process.stderr.write(line(0));
      last = Date.now();
    } else if (e.kind === 'bytes') {
      const now = Date.now();
      if (now - last >= 100) {
        process.stderr.write(`\r${line(e.bytes)}\x1b[K`);
        last = now;
      }
    } else if (e.cached) {
      process.stderr.write(`  ${e.artifact} ${short} cached (${human(e.size)})\n`);
    } else {
      process.stderr.write(`\r${line(e.size)} done\x1b[K\n`);
    }
  };
}
