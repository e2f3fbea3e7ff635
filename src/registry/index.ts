/**
 * The registry folder's public surface: the client facade and what its callers pass to it or get
 * back. Modules inside the folder import each other directly; code outside imports from here.
 */
export { RegistryClient, type ArtifactSource, type FetchedManifest, type RegistryClientOptions } from './client.js';
export type { Credential, CredentialSource } from './auth/session.js';
export { CredentialStore } from './auth/credentials.js';
export { createRegistryClient, configCredentials, credentialsFor, credentialStoreFor, hostSettingsFor, registryFiles, type RegistryFlags } from './factory.js';
export { checkAllowed, isAllowed, restrictReads, type AllowedRegistries } from './allowed.js';
export { bufferBlob, fileBlob, type BlobSource } from './upload.js';
export { digestParts, fileDigest, sha256Digest } from './digest.js';
export * from './media-types.js';
/** For downloads that outlive one request (content ingest): the client's retry decisions. */
export { backoffDelay, isRetryableNetworkError, networkError, pause } from './transport.js';
export { BrokenDownloadError } from './blobs.js';
export { AGENT_TIMEOUTS, COMMAND_TIMEOUTS, registryTimeouts, type RegistryTimeouts } from './timeouts.js';
export { isIndexMediaType, isManifestMediaType, OCI_INDEX, OCI_MANIFEST } from './media-types.js';
export type { Platform, Descriptor, ImageIndex, ImageManifest } from './media-types.js';
export type { readBodyLimited } from './transport.js';
export type { request } from './undici.js';
