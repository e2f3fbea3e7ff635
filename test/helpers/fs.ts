/** Temp dirs and files for tests, and a plain existence check. */
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh directory under the system temp dir; `prefix` names it, to tell tests' leftovers apart. */
export async function tempDir(prefix = 'diginfractl-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes `content` to a file named `name` in a fresh temp dir and returns its path. */
export async function tempFile(name: string, content: string | Buffer): Promise<string> {
  const path = join(await tempDir('diginfractl-src-'), name);
  await writeFile(path, content);
  return path;
}

/** Whether anything (file, directory, link target) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
