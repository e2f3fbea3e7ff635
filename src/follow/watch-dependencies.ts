/**
 * The files the agent depends on besides its config file, watched (src/util/watch-files.ts, which
 * sees a Kubernetes Secret's or ConfigMap's `..data` swap) so that a rotation applies without a
 * restart:
 *
 *   credentials  docker-format credential files (registry.authFile: a mounted pull Secret; ours and
 *                docker's config.json): the next request reads them again (CredentialStore.changed)
 *   ca           CA bundles (registry.caFiles, --ca-file): the hosts that trust one get a new TLS
 *                dispatcher; transfers in flight finish on the old one (Transport.reloadTls)
 *   trust        verification material (registry.cosignKeys, --verify-key, registry.trustedRoot): read
 *                again, so that a version refused for its signature gets another look
 *
 * What each kind does is the caller's (the `artifact follow` action holds the client and settings).
 */
import { resolve as resolvePath } from 'node:path';
import { messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { watchFiles, type FileWatch, type WatchFilesOptions } from '../util/index.js';

export type DependencyKind = 'credentials' | 'ca' | 'trust';

/** The watched files, by kind. */
export type DependentFiles = Record<DependencyKind, readonly string[]>;

/** What to do when files of a kind changed (their resolved paths). */
export type DependencyHandlers = Record<DependencyKind, (changed: string[]) => Promise<void> | void>;

/** Words for the log line of each kind. */
const WHAT: Record<DependencyKind, string> = {
  credentials: 'registry credentials: read again at the next request',
  ca: 'CA bundle: new TLS connections trust it from now on',
  trust: 'verification keys: read again, refused versions get another look',
};

/**
 * Watches `files` and calls the handler of each kind whose files changed, kinds in the order
 * credentials, ca, trust; a handler's failure is logged and does not stop the watch.
 */
export async function watchDependentFiles(files: DependentFiles, handlers: DependencyHandlers, logger: Logger, opts: WatchFilesOptions = {}): Promise<FileWatch> {
  const kinds = Object.keys(WHAT) as DependencyKind[];
  const byKind = new Map(kinds.map((k) => [k, new Set(files[k].map((f) => resolvePath(f)))]));
  const all = kinds.flatMap((k) => [...byKind.get(k)!]);
  return watchFiles(
    all,
    async (changed) => {
      for (const kind of kinds) {
        const mine = changed.filter((f) => byKind.get(kind)!.has(f));
        if (mine.length === 0) continue;
        logger.info({ event: 'files-changed', kind, files: mine }, `${mine.join(', ')} changed: ${WHAT[kind]}`);
        try {
          await handlers[kind](mine);
        } catch (err) {
          logger.error({ event: 'files-reload-failed', kind, files: mine, err: messageOf(err) }, `${mine.join(', ')} changed, and could not be applied: ${messageOf(err)}; keeping what was in use`);
        }
      }
    },
    { ...opts, onError: opts.onError ?? ((err) => logger.warn(`watching ${all.join(', ')}: ${messageOf(err)}`)) },
  );
}

/** Whether two sets of dependent files are the same (a reload that changed none keeps its watch). */
export function sameDependentFiles(a: DependentFiles, b: DependentFiles): boolean {
  const key = (f: DependentFiles): string => JSON.stringify([f.credentials, f.ca, f.trust].map((l) => [...l].map((p) => resolvePath(p)).sort()));
  return key(a) === key(b);
}
