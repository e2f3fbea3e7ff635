/**
 * Remembering an index that could not be fetched, so that every command does not pay the same
 * failure again: after a first-use fetch of a remote index fails, `<cache>/indexes/<name>.unreachable.json`
 * records when and why, and until `retryAt` the index is skipped without a request. `index update`
 * tries again at once; any successful fetch removes the record (store.ts). Indexes on disk are never
 * remembered: reading a file costs nothing, and a user who creates it expects it to count at once.
 */
import { readFileSync } from 'node:fs';
import { isDiginfraError, messageOf, type ErrorCode } from '../errors.js';
import { writeFileAtomic } from '../config/index.js';
import { isLocalIndex } from './url-kind.js';
import { cachePaths } from './store.js';

/** How long a failed index is left alone before a command tries it again (default 30 minutes). */
export const UNREACHABLE_RETRY_MS = 30 * 60_000;

export interface UnreachableRecord {
  url: string;
  /** ISO time of the failure. */
  failedAt: string;
  /** ISO time after which a command may try again. */
  retryAt: string;
  /** What the failure said, and its error code when it had one. */
  message: string;
  code?: ErrorCode;
}

function unreachablePath(cacheDir: string, name: string): string {
  return cachePaths(cacheDir, name).unreachable;
}

/**
 * The remembered failure of index `name` at `url`, while it still holds at `now`; undefined
 * otherwise. Read synchronously: `artifact search` reads nothing on the thread pool.
 */
export function rememberedFailure(cacheDir: string, name: string, url: string, now: number): UnreachableRecord | undefined {
  let record: Partial<UnreachableRecord>;
  try {
    record = JSON.parse(readFileSync(unreachablePath(cacheDir, name), 'utf8')) as Partial<UnreachableRecord>;
  } catch {
    return undefined;
  }
  if (record.url !== url || typeof record.retryAt !== 'string' || typeof record.message !== 'string' || typeof record.failedAt !== 'string') return undefined;
  const until = Date.parse(record.retryAt);
  return Number.isFinite(until) && until > now ? (record as UnreachableRecord) : undefined;
}

/** Records a failed fetch of a remote index; best effort (a read-only cache just means trying again next time). */
export async function rememberFailure(cacheDir: string, name: string, url: string, err: unknown, now: number, retryMs = UNREACHABLE_RETRY_MS): Promise<void> {
  if (isLocalIndex(url)) return;
  const record: UnreachableRecord = {
    url,
    failedAt: new Date(now).toISOString(),
    retryAt: new Date(now + retryMs).toISOString(),
    message: messageOf(err),
    ...(isDiginfraError(err) && { code: err.code }),
  };
  await writeFileAtomic(unreachablePath(cacheDir, name), `${JSON.stringify(record, null, 2)}\n`).catch(() => undefined);
}

/** `2025-01-02T03:04:05Z` */
function shortTime(iso: string): string {
  return iso.replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The one warning for a skipped index: why, when it is tried again, and what to run to try now or to
 * stop using it (which silences the warning).
 */
export function skippedIndexWarning(name: string, reason: unknown): string {
  const stop = `"diginfractl index remove ${name}" stops using it and this warning`;
  if (!(reason instanceof IndexSkipped) || !reason.remote) return `index "${name}" skipped: ${messageOf(reason)}; ${stop}`;
  const when = reason.record ? `not tried again before ${shortTime(reason.record.retryAt)}` : `not tried again for ${UNREACHABLE_RETRY_MS / 60_000} minutes`;
  return `index "${name}" skipped: ${reason.message}; ${when} ("diginfractl index update ${name}" tries now; ${stop})`;
}

/**
 * Why an index was skipped: the fetch error of this run (`cause`), or a failure remembered from an
 * earlier one (`record`). The message is the original error's, so a warning reads as before.
 */
export class IndexSkipped extends Error {
  override readonly name = 'IndexSkipped';
  readonly index: string;
  readonly record: UnreachableRecord | undefined;
  /** Remote (not a file): its failure is remembered. */
  readonly remote: boolean;

  constructor(index: string, url: string, reason: { cause: unknown } | { record: UnreachableRecord }) {
    super(
      'record' in reason ? `${reason.record.message} (at ${shortTime(reason.record.failedAt)})` : messageOf(reason.cause),
      'cause' in reason ? { cause: reason.cause } : undefined,
    );
    this.index = index;
    this.record = 'record' in reason ? reason.record : undefined;
    this.remote = !isLocalIndex(url);
  }
}
