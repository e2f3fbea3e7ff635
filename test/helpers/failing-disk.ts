/**
 * A disk that fails on demand, for tests that mock node:fs/promises (a real disk will not fail an
 * fsync when asked). Used from a `vi.mock` factory through a dynamic import, so this module imports
 * node:fs/promises for its types only.
 */
import type * as FsPromises from 'node:fs/promises';

/** `real` with every FileHandle that `open` returns handed to `hook` first (to replace its sync, datasync...). */
export function withOpenHook(real: typeof FsPromises, hook: (fh: FsPromises.FileHandle, path: string) => void): typeof FsPromises {
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const fh = await real.open(...args);
      hook(fh, String(args[0]));
      return fh;
    },
  };
}
