/**
 * fsync of files and directories: a rename is durable only once the renamed file's bytes and the
 * directory entry are both on disk.
 */
import { open } from 'node:fs/promises';
import { DiginfraError, messageOf } from '../../errors.js';

/** Directory fsync errors that only mean "this filesystem does not do that". */
const FSYNC_UNSUPPORTED = new Set(['EINVAL', 'EISDIR', 'EPERM', 'EBADF', 'ENOTSUP', 'EOPNOTSUPP', 'EACCES']);

/** fsync of a directory, so renames in it survive a crash. Filesystems that refuse it are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!FSYNC_UNSUPPORTED.has(code)) {
      throw new DiginfraError('IO', `cannot fsync directory ${dir}: ${messageOf(err)}`, { cause: err });
    }
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** Every directory of `dirs`, deepest first: a new directory's entry is durable in its parent after its own contents. */
export async function fsyncDirsDeepestFirst(dirs: Iterable<string>): Promise<void> {
  for (const dir of [...dirs].sort((x, y) => y.length - x.length)) await fsyncDir(dir);
}

/** fsync of a file's bytes, before it is renamed into place. */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
