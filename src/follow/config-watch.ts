/**
 * Watching the config file for live reloads, through the watcher of the files the agent depends on
 * (src/util/watch-files.ts: the directory is watched, so a ConfigMap's `..data` symlink swap is
 * seen). The caller gets the new text and ignores what changed nothing it uses.
 */
import { readFile } from 'node:fs/promises';
import { watchFiles, type FileWatch, type WatchFilesOptions } from '../util/index.js';

export type ConfigWatcher = FileWatch;
export type WatchOptions = WatchFilesOptions;

/** The file's text, or undefined when it is missing or unreadable. */
async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Calls `onChange` (never two at a time) with the new text of `path` whenever its content changed.
 * The content at the time of the call is the baseline.
 */
export function watchConfigFile(path: string, onChange: (text: string | undefined) => Promise<void> | void, opts: WatchOptions = {}): Promise<ConfigWatcher> {
  return watchFiles([path], async () => onChange(await readText(path)), opts);
}
