/** Index files for the CLI tests: written to disk, named by a file:// URL (no server, no network). */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';

export interface TestEntry {
  name: string;
  type: string;
  registry: string;
  repository: string;
  description?: string;
  keywords?: string[];
}

/** Writes `entries` as the index file `dir/file` and returns its file:// URL; description and keywords default from the name. */
export async function writeIndexFile(dir: string, file: string, entries: readonly TestEntry[]): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, stringify(entries.map((e) => ({ description: e.name, keywords: [], ...e }))));
  return pathToFileURL(path).href;
}
