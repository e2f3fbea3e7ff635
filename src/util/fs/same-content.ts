/** Byte comparison of two files, so that a file already in place is not replaced (a rename costs the engine a reload). */
import { open, stat } from 'node:fs/promises';

const COMPARE_CHUNK = 64 * 1024;

/**
 * True when `a` and `b` are both regular files with the same bytes. Sizes first, then both files are
 * read side by side in 64 KiB chunks, stopping at the first difference: memory stays constant
 * whatever the size. A missing file (or one that is not a regular file) gives false.
 */
export async function sameContent(a: string, b: string): Promise<boolean> {
  let sa, sb;
  try {
    [sa, sb] = await Promise.all([stat(a), stat(b)]);
  } catch {
    return false;
  }
  if (!sa.isFile() || !sb.isFile() || sa.size !== sb.size) return false;
  if (sa.dev === sb.dev && sa.ino === sb.ino) return true;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.alloc(COMPARE_CHUNK);
    const bb = Buffer.alloc(COMPARE_CHUNK);
    let position = 0;
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, COMPARE_CHUNK, position), fb.read(bb, 0, COMPARE_CHUNK, position)]);
      if (ra.bytesRead !== rb.bytesRead) return false; // one changed under us
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
      position += ra.bytesRead;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
