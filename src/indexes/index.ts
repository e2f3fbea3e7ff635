/** The public surface of src/indexes/: what other folders may import (test/architecture.test.ts). */
export { updateIndexCredentials, readIndexCredentials } from './credentials.js';
export { isGcsIndex, isLocalIndex, isS3Index, normalizeIndexUrl } from './fetch.js';
export { commandLoadOptions, loadIndexes, loadSearchRows, skipCode, notConfigured } from './load.js';
export { discardIndex, downloadIndex, storeIndex, tlsForIndex, refreshIndex } from './refresh.js';
export { resolveIndexedName } from './resolve-name.js';
export type { LoadedIndex } from './resolve-name.js';
export { searchIndexes, searchRows, scoreEntry } from './search.js';
export type { SearchHit } from './search.js';
export { readCacheMeta, readCachedIndex, removeCachedIndex, readSearchRows } from './store.js';
export type { IndexEntry, IndexCredentials } from './types.js';
export { IndexSkipped } from './unreachable.js';
