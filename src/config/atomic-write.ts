/**
 * `writeFileAtomic` of src/util (temp file in the same directory, fsync, rename, fsync of the
 * directory), loaded on first write: read-only paths such as `artifact search` then never load it
 * nor the node:crypto module it uses. Its own module, not util/index.ts: a dynamic import of the
 * index would load every file operation with it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const { writeFileAtomic: write } = await import('../util/fs/write-atomic.js');
  await write(path, data, opts);
}
