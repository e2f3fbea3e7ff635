/**
 * Local content by digest: the blob cache, and ingest of registry blobs into it (streamed, verified,
 * placed by rename). Below artifact/ and install/, above registry/.
 */
export { BlobCache, DEFAULT_CACHE_MAX_AGE_MS, type BlobFetch } from './blob-cache.js';
export { ingestBlob, type BlobReader } from './ingest.js';
export { withManifestCache } from './manifest-cache.js';
