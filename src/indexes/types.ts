/**
 * An index file is a YAML list of entries, one per artifact (docs/indexes.md). Mandatory: name, type,
 * registry, repository, description, keywords. Unknown fields are kept and passed on.
 */
import type { ErrorCode } from '../errors.js';

export interface Maintainer {
  name?: string;
  email?: string;
  [field: string]: unknown;
}

export interface IndexEntry {
  name: string;
  /** `rulesfile`, `plugin`, or another lower-case word. */
  type: string;
  registry: string;
  repository: string;
  description: string;
  keywords: string[];
  license?: string;
  home?: string;
  sources?: string[];
  maintainers?: Maintainer[];
  /** Kept as is (e.g. `signature.cosign`), for whoever verifies signatures. */
  signature?: unknown;
  [field: string]: unknown;
}

/** One configured index with its entries, as read from the cache. */
export interface LoadedIndex {
  name: string;
  url: string;
  entries: IndexEntry[];
  /** ISO time the content last changed (a 200). */
  fetchedAt?: string;
  /** ISO time of the last successful update (200 or 304). */
  checkedAt?: string;
  /**
   * Set when the index could not be loaded and was skipped (its entries are then empty): why, and
   * the code of the error that made it so. Only with `keepSkipped` (load.ts).
   */
  skipped?: { message: string; code: ErrorCode };
}

/** Kept beside the cached copy: what a conditional GET needs, and when it happened. */
export interface IndexCacheMeta {
  name: string;
  url: string;
  etag?: string;
  lastModified?: string;
  /** For file:// and path indexes: the source file's mtime and size at the last read. */
  sourceMtimeMs?: number;
  sourceSize?: number;
  fetchedAt: string;
  checkedAt: string;
  entries: number;
  /** sha256 of the cached YAML, to tie the derived entries cache to it. */
  sha256: string;
  size: number;
}

/** HTTP basic credentials of a private index. */
export interface IndexCredentials {
  username: string;
  password: string;
}
