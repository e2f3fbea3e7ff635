/**
 * `writeFileAtomic` of src/util/atomic-fs.ts (temp file in the same directory, fsync, rename, fsync
 * of the directory), loaded on first write: read-only paths such as `artifact search` then never load
 * it nor the node:crypto module it uses.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const { writeFileAtomic: write } = await import('../util/atomic-fs.js');
  await write(path, data, opts);
}
