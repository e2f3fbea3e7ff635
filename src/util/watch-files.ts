/**
 * Watching files a long-running process depends on (its config, registry credentials, CA bundles,
 * verification keys) so that a change applies without a restart. The directories are watched, not
 * the files: a Kubernetes ConfigMap or Secret volume updates by writing a new `..<timestamp>` dir and
 * renaming a `..data_tmp` symlink over `..data`, so `config.json -> ..data/config.json` changes
 * content without any event on that path itself. Every event in a watched directory (debounced)
 * makes the files be read again; only those whose content differs from the last seen are reported.
 * A slow poll backs the events up (network filesystems, missed events, a directory that appears
 * later).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watch } from 'chokidar';

export interface FileWatch {
  close(): Promise<void>;
}

export interface WatchFilesOptions {
  /** Events within this window are handled once (default 250 ms). */
  debounceMs?: number;
  /** Read the files this often whatever the events (default 60 s; 0: never). */
  pollMs?: number;
  /** Told about watcher errors and about errors of `onChange` (they do not stop the watch). */
  onError?: (err: unknown) => void;
}

/** A digest of the file's bytes, `missing` when it cannot be read. */
async function fingerprint(path: string): Promise<string> {
  try {
    return createHash('sha256').update(await readFile(path)).digest('hex');
  } catch {
    return 'missing';
  }
}

/**
 * Calls `onChange` with the paths (resolved) whose content changed since the last call, never two
 * calls at a time. The content at the time of the watch is the baseline; a file that appears or goes
 * away is a change too.
 */
export async function watchFiles(paths: readonly string[], onChange: (changed: string[]) => Promise<void> | void, opts: WatchFilesOptions = {}): Promise<FileWatch> {
  const files = [...new Set(paths.map((p) => resolve(p)))];
  const dirs = new Set(files.map((f) => dirname(f)));
  const names = new Set(files.map((f) => basename(f)));
  const debounceMs = opts.debounceMs ?? 250;
  const pollMs = opts.pollMs ?? 60_000;
  const seen = new Map<string, string>();
  for (const f of files) seen.set(f, await fingerprint(f));
  let timer: NodeJS.Timeout | undefined;
  let busy: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const look = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = (async () => {
      do {
        again = false;
        const changed: string[] = [];
        for (const f of files) {
          const now = await fingerprint(f);
          if (seen.get(f) === now) continue;
          seen.set(f, now);
          changed.push(f);
        }
        if (changed.length === 0 || closed) continue;
        try {
          await onChange(changed);
        } catch (err) {
          opts.onError?.(err);
        }
      } while (again && !closed);
    })();
    try {
      await busy;
    } finally {
      busy = undefined;
    }
  };
  const kick = (): void => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => void look(), debounceMs);
  };

  // Symlinks are watched as entries (`..data` swapped by rename), not followed into their targets. A
  // directory that does not exist yet is left to the poll.
  const present = [...dirs].filter((d) => existsSync(d));
  const watcher = present.length > 0 ? watch(present, { depth: 0, ignoreInitial: true, followSymlinks: false, persistent: true }) : undefined;
  if (watcher) {
    watcher.on('all', (_event, p) => {
      const name = basename(p);
      // Only the files themselves and the volume machinery (`..data`, `..2024_...`) matter.
      if (dirs.has(p) || names.has(name) || name.startsWith('..')) kick();
    });
    watcher.on('error', (err) => opts.onError?.(err));
    // Never hang start-up on the watcher: without 'ready' within 10 s, the events come when they come.
    await new Promise<void>((res) => {
      const t = setTimeout(res, 10_000);
      watcher.once('ready', () => {
        clearTimeout(t);
        res();
      });
    });
  }
  const poll = pollMs > 0 ? setInterval(kick, pollMs) : undefined;
  poll?.unref();

  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      await watcher?.close();
      await busy;
    },
  };
}
