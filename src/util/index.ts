/** File operations that a reader (the engine reloading its rules dirs) never sees half done. */
export { fsyncDir } from './fs/fsync.js';
export { INTENT_NAME, readIntent, settleIntent, type IntentChange, type IntentRecord, type SettledIntent } from './fs/intent.js';
export { placeFileSets, type FileSet, type PlaceFileSetsOptions, type PlaceFileSetsResult } from './fs/place-sets.js';
export { placeFiles, type StagedFile } from './fs/place.js';
export { sameContent } from './fs/same-content.js';
export { makeStagingDir, removeDir, STAGING_PREFIX, STALE_STAGING_MS, sweepStaleStaging } from './fs/staging.js';
export { openAtomicFile, writeFileAtomic, writeStreamAtomic, type AtomicFile } from './fs/write-atomic.js';
export { watchFiles } from './watch-files.js';
export type { FileWatch, WatchFilesOptions } from './watch-files.js';
