/**
 * An OCI distribution client: manifests, blobs, tags and referrers, with the registry's auth
 * handshake done for the caller. The facade callers use; each kind of operation lives in its own
 * module (manifests, blobs, upload, listing, referrers), all sending through one AuthSession.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import type { Readable } from 'node:stream';
import { DiginfraError } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import { AuthSession, type Credential, type CredentialSource } from './auth/session.js';
import { blobExists, openBlob, readBlob } from './blobs.js';
import { listCatalog, listTags } from './listing.js';
import { deleteManifest, fetchManifest, putManifest, resolveManifest, type FetchedManifest } from './manifests.js';
import { MANIFEST_ACCEPT, type Descriptor } from './media-types.js';
import { addToReferrersTag, listReferrers } from './referrers.js';
import { Transport, type TransportOptions } from './transport.js';
import { mountBlob, pushBlob, type BlobSource } from './upload.js';

export type { FetchedManifest };

/**
 * What reading an artifact needs: its manifests and blobs, verified. A registry client is one; an
 * OCI image layout on disk is another (src/artifact/oci-layout.ts, for `repo pull oci:DIR`).
 */
export type ArtifactSource = Pick<RegistryClient, 'fetchManifest' | 'readBlob' | 'openBlob'>;

export interface RegistryClientOptions extends TransportOptions {
  credentials?: CredentialSource;
  /** Blobs larger than this are uploaded in PATCH chunks of this size. */
  chunkSize?: number;
  /** Largest manifest we read; manifests are small JSON documents. */
  maxManifestBytes?: number;
}

const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;
const DEFAULT_MAX_MANIFEST = 4 * 1024 * 1024;
/** Default of readBlob's `maxBytes`: configs are small JSON documents. */
const DEFAULT_MAX_SMALL_BLOB = 1024 * 1024;

export class RegistryClient {
  readonly transport: Transport;
  readonly #session: AuthSession;
  readonly #chunkSize: number;
  readonly #maxManifest: number;

  constructor(options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.#session = new AuthSession(this.transport, options.credentials);
    this.#chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.#maxManifest = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  /** See AuthSession.checkLogin: `repo login`'s check, nothing stored. */
  checkLogin(registry: string, cred: Credential): Promise<'verified' | 'unverified'> {
    return this.#session.checkLogin(registry, cred);
  }

  /** GET /v2/: is this a registry, and can we talk to it. */
  async ping(registry: string): Promise<void> {
    const res = await this.#session.send(registry, [], { method: 'GET', url: this.#session.url(registry, '/v2/') });
    await res.body.dump();
    if (res.statusCode !== 200) throw new DiginfraError('REGISTRY_ERROR', `${registry}/v2/ answered ${res.statusCode}`);
  }

  // ---------------------------------------------------------------- manifests

  /** HEAD of a manifest: its digest, media type and size, without downloading it. */
  resolve(ref: OciReference): Promise<Descriptor> {
    return resolveManifest(this.#session, ref, this.#maxManifest);
  }

  /** GET of a manifest or index, verified against the digest asked for (or the registry's header). */
  fetchManifest(ref: OciReference, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    return fetchManifest(this.#session, ref, accept, this.#maxManifest);
  }

  /**
   * PUT of a manifest under a tag or digest. When the manifest has a `subject` and the registry does
   * not announce referrers support (`OCI-Subject`), the fallback `sha256-<hex>` tag index is updated.
   */
  async pushManifest(ref: OciReference, bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const { descriptor, subjectSupported } = await putManifest(this.#session, ref, bytes, mediaType);
    if (!subjectSupported) await addToReferrersTag(this.#session, ref, descriptor, bytes, this.#maxManifest);
    return descriptor;
  }

  deleteManifest(ref: OciReference & { digest: string }): Promise<void> {
    return deleteManifest(this.#session, ref);
  }

  /** All tags of a repository, following `Link` pagination. */
  listTags(ref: OciReference, pageSize = 1000): Promise<string[]> {
    return listTags(this.#session, ref, pageSize);
  }

  /** Repositories of a registry (`/v2/_catalog`); many registries disable it. */
  catalog(registry: string): Promise<string[]> {
    return listCatalog(this.#session, registry);
  }

  /**
   * Manifests that refer to `digest` through their `subject`: the referrers API when the registry has
   * it, else the `sha256-<hex>` tag index of the fallback schema.
   */
  referrers(ref: OciReference, digest: string, artifactType?: string): Promise<Descriptor[]> {
    return listReferrers(this.#session, ref, digest, artifactType, this.#maxManifest);
  }

  // ---------------------------------------------------------------- blobs

  blobExists(ref: OciReference, digest: string): Promise<boolean> {
    return blobExists(this.#session, ref, digest);
  }

  /**
   * GET of a blob as a stream that verifies size and digest as it flows. Redirects to blob storage
   * are followed by hand so the registry's Authorization never goes to another host. `signal` aborts
   * the download (the stream errors with the signal's reason).
   */
  openBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, opts: { signal?: AbortSignal | undefined } = {}): Promise<Readable> {
    return openBlob(this.#session, ref, desc, opts);
  }

  /** A small blob (a config) read into memory, verified; refuses anything over `maxBytes`. */
  readBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes = DEFAULT_MAX_SMALL_BLOB): Promise<Buffer> {
    return readBlob(this.#session, ref, desc, maxBytes);
  }

  /**
   * Asks the registry to mount `digest` from another repository of it (a cross-repository blob mount);
   * true when it did.
   */
  mountBlob(ref: OciReference, digest: string, fromRepository: string): Promise<boolean> {
    return mountBlob(this.#session, ref, digest, fromRepository);
  }

  /**
   * Uploads a blob unless the repository already has it: a cross-repository mount when `mountFrom`
   * names a repository of the same registry, else POST + PUT (monolithic) or POST + PATCH... + PUT
   * (chunked) for blobs larger than the chunk size.
   */
  pushBlob(ref: OciReference, blob: BlobSource, opts: { mountFrom?: string } = {}): Promise<'exists' | 'mounted' | 'uploaded'> {
    return pushBlob(this.#session, ref, blob, { mountFrom: opts.mountFrom, chunkSize: this.#chunkSize });
  }
}
