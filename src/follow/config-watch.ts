/**
 * Watching the config file for live reloads. The directory is watched, not the file: a Kubernetes
 * ConfigMap volume updates by writing a new `..<timestamp>` dir and renaming a `..data_tmp` symlink
 * over `..data`, so `diginfractl.yaml -> ..data/diginfractl.yaml` changes content without any event
 * on that path itself. Every event in the directory (debounced) makes the caller re-read the file; it
 * compares the content and ignores events that changed nothing. A slow poll backs chokidar up (network
 * filesystems, missed events).
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { watch } from 'chokidar';

export interface ConfigWatcher {
  close(): Promise<void>;
}

export interface WatchOptions {
  /** Events within this window are handled once (default 250 ms). */
  debounceMs?: number;
  /** Re-read the file this often whatever the events (default 60 s; 0: never). */
  pollMs?: number;
  /** Told about watcher errors (they do not stop the watch). */
  onError?: (err: unknown) => void;
}

/** The file's text, or undefined when it is missing or unreadable. */
async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Calls `onChange` (never two at a time) whenever the text of `path` differs from the last one seen.
 * The text at the time of the call is the baseline.
 */
export async function watchConfigFile(path: string, onChange: (text: string | undefined) => Promise<void> | void, opts: WatchOptions = {}): Promise<ConfigWatcher> {
  const file = resolve(path);
  const dir = dirname(file);
  const debounceMs = opts.debounceMs ?? 250;
  const pollMs = opts.pollMs ?? 60_000;
  let last = await readText(file);
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
        const text = await readText(file);
        if (text === last || closed) continue;
        last = text;
        try {
          await onChange(text);
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

  // Symlinks are watched as entries (`..data` swapped by rename), not followed into their targets.
  const watcher = watch(dir, { depth: 0, ignoreInitial: true, followSymlinks: false, persistent: true });
  watcher.on('all', (_event, p) => {
    const name = basename(p);
    // Only the file itself and the ConfigMap machinery (`..data`, `..2024_...`) matter.
    if (p === dir || name === basename(file) || name.startsWith('..')) kick();
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
  const poll = pollMs > 0 ? setInterval(kick, pollMs) : undefined;
  poll?.unref();

  return {
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (poll) clearInterval(poll);
      await watcher.close();
      await busy;
    },
  };
}
