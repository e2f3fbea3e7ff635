/**
 * An OCI distribution client: manifests, blobs, tags and referrers, with the registry's auth
 * handshake done for the caller. https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform, pipeline as pipelineCb, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiginfraError } from '../errors.js';
import { formatReference, referenceSelector, type OciReference } from '../reference/reference.js';
import { parseChallenge, type Challenge } from './auth/challenge.js';
import { mergeScopes, repositoryScope, type Action } from './auth/scope.js';
import { TokenCache } from './auth/token-cache.js';
import {
  MANIFEST_ACCEPT,
  OCI_INDEX,
  OCI_MANIFEST,
  isIndexMediaType,
  type Descriptor,
  type ImageIndex,
} from './media-types.js';
import {
  Transport,
  backoffDelay,
  isRetryableNetworkError,
  networkError,
  parseRetryAfter,
  type HttpRequest,
  type HttpResponse,
  type TransportOptions,
  readBodyLimited,
} from './transport.js';

export interface Credential {
  /** Where the credential came from (`registry.auth.basic in the config`), for error hints. */
  origin?: string;
  username?: string;
  password?: string;
  identityToken?: string;
  /**
   * A bearer token for the registry itself (an OAuth2 access token from `registry.auth.oauth`, or
   * docker config.json's `registrytoken`): sent as is to a Bearer challenge, without asking the realm.
   */
  registryToken?: string;
  /** Epoch ms after which this credential (a short-lived token) must not be reused from the cache. */
  expiresAt?: number;
}

/**
 * What reading an artifact needs: its manifests and blobs, verified. A registry client is one; an
 * OCI image layout on disk is another (src/artifact/oci-layout.ts, for `repo pull oci:DIR`).
 */
export type ArtifactSource = Pick<RegistryClient, 'fetchManifest' | 'readBlob' | 'openBlob'>;

export interface CredentialSource {
  get(host: string): Promise<Credential | undefined>;
}

export interface RegistryClientOptions extends TransportOptions {
  credentials?: CredentialSource;
  /** Blobs larger than this are uploaded in PATCH chunks of this size. */
  chunkSize?: number;
  /** Largest manifest we read; manifests are small JSON documents. */
  maxManifestBytes?: number;
}

export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  /** Parsed JSON of the manifest or index. */
  json: Record<string, unknown>;
}

export interface BlobSource {
  digest: string;
  size: number;
  /** Opens the content from the start; called again on a retry. */
  open: () => Readable;
}

const DEFAULT_CHUNK_SIZE = 64 * 1024 * 1024;
const DEFAULT_MAX_MANIFEST = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;
/** How long a looked-up credential is reused before the files and helpers are asked again. */
const CREDENTIAL_TTL_MS = 5 * 60_000;

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function hashFor(digest: string): { algorithm: string; hex: string } {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex || (algorithm !== 'sha256' && algorithm !== 'sha512')) {
    throw new DiginfraError('DIGEST_MISMATCH', `unsupported digest "${digest}"`);
  }
  return { algorithm, hex };
}

/**
 * Passes bytes through while hashing and counting them; fails the stream when the content is longer
 * than promised or, at the end, when size or digest differ. Nothing is buffered.
 */
export class VerifyingStream extends Transform {
  readonly #hash;
  readonly #expected: { digest: string; size: number };
  readonly #what: string;
  #bytes = 0;

  constructor(expected: { digest: string; size: number }, what: string) {
    super();
    this.#expected = expected;
    this.#what = what;
    this.#hash = createHash(hashFor(expected.digest).algorithm);
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#expected.size) {
      cb(new DiginfraError('SIZE_MISMATCH', `${this.#what} is larger than its declared ${this.#expected.size} bytes`));
      return;
    }
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#bytes !== this.#expected.size) {
      cb(new DiginfraError('SIZE_MISMATCH', `${this.#what} is ${this.#bytes} bytes, expected ${this.#expected.size}`));
      return;
    }
    const actual = `${hashFor(this.#expected.digest).algorithm}:${this.#hash.digest('hex')}`;
    if (actual !== this.#expected.digest) {
      cb(new DiginfraError('DIGEST_MISMATCH', `${this.#what} has digest ${actual}, expected ${this.#expected.digest}`, {
        hint: 'the registry served corrupted or tampered content; nothing was written',
      }));
      return;
    }
    cb();
  }
}

interface OciErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

async function readErrorBody(res: HttpResponse): Promise<string> {
  try {
    const text = (await readLimited(res, 64 * 1024)).toString('utf8');
    const parsed = JSON.parse(text) as OciErrorBody;
    const first = parsed.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(': ');
    return text.slice(0, 200);
  } catch {
    return '';
  }
}

function readLimited(res: HttpResponse, limit: number): Promise<Buffer> {
  return readBodyLimited(res, limit, () => new DiginfraError('REGISTRY_ERROR', `response larger than ${limit} bytes`));
}

/** Parses a registry's JSON answer; anything else (an HTML error page from a proxy) is named. */
function parseJson<T>(bytes: Buffer, registry: string, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new DiginfraError('REGISTRY_ERROR', `${registry} answered ${what} with something other than JSON`, {
      hint: 'is a proxy or login page in the way? check the registry address and --plain-http',
    });
  }
}

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `<url>; rel="next"` from a Link header, resolved against the request URL. */
function nextLink(res: HttpResponse, base: string): string | undefined {
  const link = header(res, 'link');
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return m ? new URL(m[1]!, base).toString() : undefined;
}

export class RegistryClient {
  readonly transport: Transport;
  readonly #credentials: CredentialSource | undefined;
  readonly #tokens = new TokenCache();
  /** The auth scheme each registry asked for, learned from its first 401. */
  readonly #challenges = new Map<string, Challenge>();
  readonly #credentialCache = new Map<string, { value: Promise<Credential | undefined>; until: number }>();
  readonly #chunkSize: number;
  readonly #maxManifest: number;

  constructor(options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.#credentials = options.credentials;
    this.#chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.#maxManifest = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  #url(registry: string, path: string): string {
    return `${this.transport.baseUrl(registry)}${path}`;
  }

  // ---------------------------------------------------------------- auth

  /**
   * Credentials per host, looked up once per client and kept briefly: a credential helper is a
   * process start, and a pull or a follow check makes many requests.
   */
  async #credentialFor(registry: string): Promise<Credential | undefined> {
    if (!this.#credentials) return undefined;
    const hit = this.#credentialCache.get(registry);
    if (hit && hit.until > Date.now()) return hit.value;
    const value = this.#credentials.get(registry);
    const entry = { value, until: Date.now() + CREDENTIAL_TTL_MS };
    this.#credentialCache.set(registry, entry);
    try {
      const cred = await value;
      // A short-lived token (OAuth, Google) is not reused past its renewal time, whatever the TTL.
      if (cred?.expiresAt !== undefined) entry.until = Math.min(entry.until, cred.expiresAt);
      return cred;
    } catch (err) {
      this.#credentialCache.delete(registry);
      throw err;
    }
  }

  /** Authorization header for a request under a known challenge, fetching a token when needed. */
  async #authorization(registry: string, challenge: Challenge, scopes: string[], cred?: Credential): Promise<string | undefined> {
    const credential = cred ?? (await this.#credentialFor(registry));
    if (challenge.scheme === 'basic') {
      if (!credential?.username) return undefined;
      return `Basic ${Buffer.from(`${credential.username}:${credential.password ?? ''}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
    const realm = challenge.params.realm;
    if (!realm) throw new DiginfraError('REGISTRY_ERROR', `${registry} sent a Bearer challenge without a realm`);
    const service = challenge.params.service;
    const allScopes = mergeScopes([...scopes, ...(challenge.params.scope ? challenge.params.scope.split(' ') : [])]);
    const key = TokenCache.key(realm, service, allScopes) + credentialFingerprint(credential);
    const cached = this.#tokens.get(key);
    if (cached) return `Bearer ${cached}`;
    const { token, expiresIn } = await this.#fetchToken(registry, realm, service, allScopes, credential);
    this.#tokens.set(key, token, expiresIn);
    return `Bearer ${token}`;
  }

  async #fetchToken(
    registry: string,
    realm: string,
    service: string | undefined,
    scopes: string[],
    cred: Credential | undefined,
  ): Promise<{ token: string; expiresIn?: number }> {
    const url = new URL(realm);
    let req: HttpRequest;
    if (cred?.identityToken) {
      // OAuth2 refresh-token grant, as docker does for identity tokens.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'diginfractl' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      req = {
        method: 'POST',
        url: url.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: () => form.toString(),
      };
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred?.username) {
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
      }
      req = { method: 'GET', url: url.toString(), headers };
    }
    const res = await this.transport.send(registry, req);
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      throw authError(registry, cred, `the token service ${url.host} refused ${cred ? 'the stored credentials' : 'anonymous access'}`);
    }
    if (res.statusCode !== 200) {
      const detail = await readErrorBody(res);
      throw new DiginfraError('REGISTRY_ERROR', `token service ${url.host} for ${registry} answered ${res.statusCode}${detail ? `: ${detail}` : ''}`);
    }
    const body = parseJson<{
      token?: string;
      access_token?: string;
      expires_in?: number;
    }>(await readLimited(res, 1024 * 1024), url.host, 'the token request');
    const token = body.access_token ?? body.token;
    if (!token) throw new DiginfraError('REGISTRY_ERROR', `token service ${url.host} returned no token`);
    return { token, ...(body.expires_in !== undefined && { expiresIn: body.expires_in }) };
  }

  /**
   * Sends a request with whatever auth the registry wants. The first request to a registry goes out
   * anonymous; a 401 teaches us the scheme, and the request is sent once more with credentials.
   */
  async #send(registry: string, scopes: string[], req: HttpRequest, cred?: Credential): Promise<HttpResponse> {
    const known = this.#challenges.get(registry);
    const auth = known ? await this.#authorization(registry, known, scopes, cred) : undefined;
    const first = await this.transport.send(registry, withAuth(req, auth));
    if (first.statusCode !== 401) return first;
    const challenge = parseChallenge(header(first, 'www-authenticate'));
    await first.body.dump();
    if (!challenge || challenge.scheme === 'other') {
      throw authError(registry, false, `${registry} requires authentication with an unsupported scheme`);
    }
    this.#challenges.set(registry, challenge);
    const credential = cred ?? (await this.#credentialFor(registry));
    if (challenge.scheme === 'bearer' && auth) {
      // The token we sent was refused (expired or too narrow): drop it and fetch a fresh one.
      const realm = challenge.params.realm ?? '';
      const allScopes = mergeScopes([...scopes, ...(challenge.params.scope ? challenge.params.scope.split(' ') : [])]);
      this.#tokens.delete(TokenCache.key(realm, challenge.params.service, allScopes) + credentialFingerprint(credential));
    }
    const retryAuth = await this.#authorization(registry, challenge, scopes, credential);
    if (!retryAuth) throw authError(registry, false, `${registry} requires authentication`);
    const second = await this.transport.send(registry, withAuth(req, retryAuth));
    if (second.statusCode === 401) {
      await second.body.dump();
      if (challenge.scheme === 'bearer' && credential?.registryToken) {
        throw new DiginfraError('AUTH_REQUIRED', `${registry} refused the OAuth access token (a registry bearer token) it was sent`, {
          hint: `check the registry.auth.oauth entry for ${registry} (clientID, scopes) and the client's permissions, or the "registrytoken" in docker's config.json`,
        });
      }
      throw authError(registry, credential, `${registry} refused ${credential ? 'the stored credentials' : 'anonymous access'}`);
    }
    return second;
  }

  /**
   * Checks credentials against the registry without storing them (for `repo login`): 'verified' when
   * the registry accepted them for `/v2/`, 'unverified' when it admits anonymous callers there (so the
   * credentials cannot be told apart from wrong ones), an AUTH_REQUIRED error when it refused them.
   */
  async checkLogin(registry: string, cred: Credential): Promise<'verified' | 'unverified'> {
    const url = this.#url(registry, '/v2/');
    const first = await this.transport.send(registry, { method: 'GET', url });
    if (first.statusCode === 200) {
      await first.body.dump();
      // The registry lets anyone in: nothing can prove or disprove the credentials.
      return 'unverified';
    }
    if (first.statusCode !== 401) {
      const detail = await readErrorBody(first);
      throw new DiginfraError('REGISTRY_ERROR', `${registry}/v2/ answered ${first.statusCode}${detail ? `: ${detail}` : ''}`, {
        hint: 'is this an OCI registry?',
      });
    }
    const challenge = parseChallenge(header(first, 'www-authenticate'));
    await first.body.dump();
    if (!challenge || challenge.scheme === 'other') throw authError(registry, false, `${registry} uses an unsupported auth scheme`);
    const auth = await this.#authorization(registry, challenge, [], cred);
    const second = await this.transport.send(registry, withAuth({ method: 'GET', url }, auth));
    await second.body.dump();
    if (second.statusCode === 401 || second.statusCode === 403) {
      throw new DiginfraError('AUTH_REQUIRED', `login to ${registry} failed: the registry rejected the username or password`, {
        hint: 'check the credentials; nothing was saved',
      });
    }
    if (second.statusCode !== 200) throw new DiginfraError('REGISTRY_ERROR', `${registry}/v2/ answered ${second.statusCode}`);
    return 'verified';
  }

  /** GET /v2/: is this a registry, and can we talk to it. */
  async ping(registry: string): Promise<void> {
    const res = await this.#send(registry, [], { method: 'GET', url: this.#url(registry, '/v2/') });
    await res.body.dump();
    if (res.statusCode !== 200) throw new DiginfraError('REGISTRY_ERROR', `${registry}/v2/ answered ${res.statusCode}`);
  }

  // ---------------------------------------------------------------- manifests

  /** HEAD of a manifest: its digest, media type and size, without downloading it. */
  async resolve(ref: OciReference): Promise<Descriptor> {
    const sel = referenceSelector(ref);
    const url = this.#url(ref.registry, `/v2/${ref.repository}/manifests/${sel}`);
    const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
      method: 'HEAD',
      url,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw await statusError(res, ref, 'manifest');
    const digest = header(res, 'docker-content-digest') ?? ref.digest;
    const mediaType = header(res, 'content-type');
    const size = Number(header(res, 'content-length'));
    if (!digest || !mediaType || !Number.isFinite(size)) {
      // Some registries omit these on HEAD; the GET computes them.
      return (await this.fetchManifest(ref)).descriptor;
    }
    if (ref.digest && digest !== ref.digest) {
      throw new DiginfraError('DIGEST_MISMATCH', `${formatReference(ref)}: registry reports digest ${digest}`);
    }
    return { mediaType: mediaType.split(';')[0]!.trim(), digest, size };
  }

  /** GET of a manifest or index, verified against the digest asked for (or the registry's header). */
  async fetchManifest(ref: OciReference, accept: string[] = MANIFEST_ACCEPT): Promise<FetchedManifest> {
    const sel = referenceSelector(ref);
    const url = this.#url(ref.registry, `/v2/${ref.repository}/manifests/${sel}`);
    const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
      method: 'GET',
      url,
      headers: { accept: accept.join(', ') },
    });
    if (res.statusCode !== 200) throw await statusError(res, ref, 'manifest');
    const bytes = await readLimited(res, this.#maxManifest);
    const digest = sha256Digest(bytes);
    const expected = ref.digest ?? header(res, 'docker-content-digest');
    if (expected && expected.startsWith('sha256:') && expected !== digest) {
      throw new DiginfraError('DIGEST_MISMATCH', `manifest ${formatReference(ref)} has digest ${digest}, expected ${expected}`);
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new DiginfraError('ARTIFACT_INVALID', `manifest ${formatReference(ref)} is not JSON`);
    }
    const mediaType =
      (typeof json.mediaType === 'string' ? json.mediaType : undefined) ?? header(res, 'content-type')?.split(';')[0]?.trim() ?? OCI_MANIFEST;
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, json };
  }

  /**
   * PUT of a manifest under a tag or digest. When the manifest has a `subject` and the registry does
   * not announce referrers support (`OCI-Subject`), the fallback `sha256-<hex>` tag index is updated.
   */
  async pushManifest(ref: OciReference, bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const sel = referenceSelector(ref);
    const digest = sha256Digest(bytes);
    const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull', 'push'])], {
      method: 'PUT',
      url: this.#url(ref.registry, `/v2/${ref.repository}/manifests/${sel}`),
      headers: { 'content-type': mediaType },
      body: () => bytes,
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) throw await statusError(res, ref, 'manifest push');
    const reported = header(res, 'docker-content-digest');
    const subjectSupported = header(res, 'oci-subject') !== undefined;
    await res.body.dump();
    if (reported && reported !== digest) {
      throw new DiginfraError('DIGEST_MISMATCH', `registry stored manifest as ${reported}, we sent ${digest}`);
    }
    const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
    const json = JSON.parse(bytes.toString('utf8')) as { subject?: Descriptor; artifactType?: string; config?: Descriptor; annotations?: Record<string, string> };
    if (json.subject && !subjectSupported) {
      await this.#addToReferrersTag(ref, json.subject.digest, {
        ...descriptor,
        ...((json.artifactType ?? json.config?.mediaType) !== undefined && { artifactType: json.artifactType ?? json.config!.mediaType }),
        ...(json.annotations !== undefined && { annotations: json.annotations }),
      });
    }
    return descriptor;
  }

  async deleteManifest(ref: OciReference & { digest: string }): Promise<void> {
    const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['delete'])], {
      method: 'DELETE',
      url: this.#url(ref.registry, `/v2/${ref.repository}/manifests/${ref.digest}`),
    });
    if (res.statusCode !== 202 && res.statusCode !== 200) throw await statusError(res, ref, 'manifest delete');
    await res.body.dump();
  }

  /** All tags of a repository, following `Link` pagination. */
  async listTags(ref: OciReference, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    let url: string | undefined = this.#url(ref.registry, `/v2/${ref.repository}/tags/list?n=${pageSize}`);
    for (let page = 0; url && page < 10_000; page++) {
      const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], { method: 'GET', url });
      if (res.statusCode !== 200) throw await statusError(res, { registry: ref.registry, repository: ref.repository }, 'tags');
      const next = nextLink(res, url);
      const body = parseJson<{ tags?: string[] | null }>(await readLimited(res, 16 * 1024 * 1024), ref.registry, 'the tag list');
      tags.push(...(body.tags ?? []));
      url = next;
    }
    return tags;
  }

  /** Repositories of a registry (`/v2/_catalog`); many registries disable it. */
  async catalog(registry: string): Promise<string[]> {
    const repos: string[] = [];
    let url: string | undefined = this.#url(registry, '/v2/_catalog?n=1000');
    for (let page = 0; url && page < 10_000; page++) {
      const res = await this.#send(registry, ['registry:catalog:*'], { method: 'GET', url });
      if (res.statusCode !== 200) throw await statusError(res, { registry, repository: '_catalog' }, 'catalog');
      const next = nextLink(res, url);
      const body = parseJson<{ repositories?: string[] }>(await readLimited(res, 16 * 1024 * 1024), registry, 'the catalog');
      repos.push(...(body.repositories ?? []));
      url = next;
    }
    return repos;
  }

  // ---------------------------------------------------------------- referrers

  /**
   * Manifests that refer to `digest` through their `subject`: the referrers API when the registry has
   * it, else the `sha256-<hex>` tag index of the fallback schema.
   */
  async referrers(ref: OciReference, digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
      method: 'GET',
      url: this.#url(ref.registry, `/v2/${ref.repository}/referrers/${digest}${query}`),
      headers: { accept: OCI_INDEX },
    });
    let manifests: Descriptor[];
    if (res.statusCode === 200 && header(res, 'content-type')?.startsWith(OCI_INDEX)) {
      manifests = parseJson<ImageIndex>(await readLimited(res, this.#maxManifest), ref.registry, 'the referrers request').manifests ?? [];
      const filtered = header(res, 'oci-filters-applied')?.includes('artifactType');
      if (filtered) return manifests;
    } else {
      if (res.statusCode !== 404 && res.statusCode !== 200) throw await statusError(res, ref, 'referrers');
      await res.body.dump();
      manifests = (await this.#referrersTagIndex(ref, digest))?.manifests ?? [];
    }
    return artifactType ? manifests.filter((m) => m.artifactType === artifactType) : manifests;
  }

  #referrersTag(ref: OciReference, digest: string): OciReference {
    return { registry: ref.registry, repository: ref.repository, tag: digest.replace(':', '-') };
  }

  async #referrersTagIndex(ref: OciReference, digest: string): Promise<ImageIndex | undefined> {
    try {
      const fetched = await this.fetchManifest(this.#referrersTag(ref, digest), [OCI_INDEX]);
      return fetched.json as unknown as ImageIndex;
    } catch (err) {
      if (err instanceof DiginfraError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  async #addToReferrersTag(ref: OciReference, subjectDigest: string, referrer: Descriptor): Promise<void> {
    const current = await this.#referrersTagIndex(ref, subjectDigest);
    const manifests = (current?.manifests ?? []).filter((m) => m.digest !== referrer.digest);
    const index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...manifests, referrer] };
    await this.pushManifest(this.#referrersTag(ref, subjectDigest), Buffer.from(JSON.stringify(index)), OCI_INDEX);
  }

  // ---------------------------------------------------------------- blobs

  async blobExists(ref: OciReference, digest: string): Promise<boolean> {
    const res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
      method: 'HEAD',
      url: this.#url(ref.registry, `/v2/${ref.repository}/blobs/${digest}`),
    });
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw await statusError(res, ref, `blob ${digest}`);
  }

  /**
   * GET of a blob as a stream that verifies size and digest as it flows. Redirects to blob storage
   * are followed by hand so the registry's Authorization never goes to another host.
   */
  async openBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    let url = this.#url(ref.registry, `/v2/${ref.repository}/blobs/${desc.digest}`);
    const origin = new URL(url).host;
    let res = await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], { method: 'GET', url });
    for (let hop = 0; [301, 302, 303, 307, 308].includes(res.statusCode); hop++) {
      const location = header(res, 'location');
      await res.body.dump();
      if (!location || hop >= MAX_REDIRECTS) {
        throw new DiginfraError('REGISTRY_ERROR', `blob ${desc.digest}: too many redirects or no Location`);
      }
      url = new URL(location, url).toString();
      // Storage backends (S3, GCS, CDNs) authenticate with the signed URL itself.
      res =
        new URL(url).host === origin
          ? await this.#send(ref.registry, [repositoryScope(ref.repository, ['pull'])], { method: 'GET', url })
          : await this.transport.send(ref.registry, { method: 'GET', url });
    }
    if (res.statusCode !== 200) throw await statusError(res, ref, `blob ${desc.digest}`);
    const length = Number(header(res, 'content-length'));
    if (Number.isFinite(length) && length !== desc.size) {
      res.body.destroy();
      throw new DiginfraError('SIZE_MISMATCH', `blob ${desc.digest} is ${length} bytes, manifest says ${desc.size}`);
    }
    const verifier = new VerifyingStream(desc, `blob ${desc.digest}`);
    // Errors of either side reach the caller through `verifier`; the callback only stops them escaping.
    pipelineCb(res.body, verifier, () => {});
    return verifier;
  }

  /** A small blob (a config) read into memory, verified; refuses anything over `maxBytes`. */
  async readBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes = 1024 * 1024): Promise<Buffer> {
    if (desc.size > maxBytes) {
      throw new DiginfraError('ARTIFACT_INVALID', `blob ${desc.digest} is ${desc.size} bytes, more than the ${maxBytes} allowed here`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of await this.openBlob(ref, desc)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Downloads a blob into `dest` via a temp file beside it: verified while streaming, fsynced, then
   * renamed, so `dest` is either absent or complete. A dropped connection starts the download over.
   */
  async downloadBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, dest: string, onBytes?: (n: number) => void): Promise<void> {
    await mkdir(dirname(dest), { recursive: true });
    const tmp = join(dirname(dest), `.${basename(dest)}.partial-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const policy = this.transport.retryPolicy;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const body = await this.openBlob(ref, desc);
          const counter = new Transform({
            transform(chunk: Buffer, _e, cb) {
              onBytes?.(chunk.length);
              cb(null, chunk);
            },
          });
          // `flush` fsyncs before close, so the rename below publishes complete bytes.
          await pipeline(body, counter, createWriteStream(tmp, { mode: 0o644, flush: true }));
          break;
        } catch (err) {
          if (attempt + 1 < policy.attempts && isRetryableNetworkError(err)) {
            await sleep(backoffDelay(attempt, policy));
            continue;
          }
          if (isRetryableNetworkError(err)) throw networkError(ref.registry, err);
          throw err;
        }
      }
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * Uploads a blob unless the repository already has it: a cross-repository mount when `mountFrom`
   * names a repository of the same registry, else POST + PUT (monolithic) or POST + PATCH... + PUT
   * (chunked) for blobs larger than the chunk size.
   */
  /**
   * Asks the registry to mount `digest` from another repository of it (a cross-repository blob mount);
   * true when it did. A registry that answers with an upload session instead has it cancelled.
   */
  async mountBlob(ref: OciReference, digest: string, fromRepository: string): Promise<boolean> {
    const scopes = [repositoryScope(ref.repository, ['pull', 'push']), repositoryScope(fromRepository, ['pull'])];
    const url = `${this.#url(ref.registry, `/v2/${ref.repository}/blobs/uploads/`)}?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`;
    const res = await this.#send(ref.registry, scopes, { method: 'POST', url, headers: { 'content-length': '0' } });
    await res.body.dump();
    if (res.statusCode === 201) return true;
    if (res.statusCode !== 202) throw await statusError(res, ref, 'blob mount');
    const location = header(res, 'location');
    if (location) {
      const cancel = await this.#send(ref.registry, scopes, { method: 'DELETE', url: new URL(location, url).toString() }).catch(() => undefined);
      await cancel?.body.dump();
    }
    return false;
  }

  async pushBlob(ref: OciReference, blob: BlobSource, opts: { mountFrom?: string } = {}): Promise<'exists' | 'mounted' | 'uploaded'> {
    if (await this.blobExists(ref, blob.digest)) return 'exists';
    const scopes = [repositoryScope(ref.repository, ['pull', 'push'])];
    let startUrl = this.#url(ref.registry, `/v2/${ref.repository}/blobs/uploads/`);
    if (opts.mountFrom && opts.mountFrom !== ref.repository) {
      scopes.push(repositoryScope(opts.mountFrom, ['pull']));
      startUrl += `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(opts.mountFrom)}`;
    }
    const start = await this.#send(ref.registry, scopes, { method: 'POST', url: startUrl, headers: { 'content-length': '0' } });
    await start.body.dump();
    if (start.statusCode === 201) return 'mounted';
    if (start.statusCode !== 202) throw await statusError(start, ref, 'blob upload');
    let location = new URL(requireHeader(start, 'location', 'blob upload'), startUrl).toString();

    if (blob.size > this.#chunkSize) {
      location = await this.#uploadChunks(ref, scopes, location, blob);
      const done = await this.#send(ref.registry, scopes, {
        method: 'PUT',
        url: withQuery(location, { digest: blob.digest }),
        headers: { 'content-length': '0' },
        noRetry: true,
      });
      if (done.statusCode !== 201) throw await statusError(done, ref, 'blob upload');
      await done.body.dump();
      return 'uploaded';
    }
    const put = await this.#send(ref.registry, scopes, {
      method: 'PUT',
      url: withQuery(location, { digest: blob.digest }),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: () => blob.open(),
      noRetry: true,
    });
    if (put.statusCode !== 201) throw await statusError(put, ref, 'blob upload');
    await put.body.dump();
    return 'uploaded';
  }

  async #uploadChunks(ref: OciReference, scopes: string[], location: string, blob: BlobSource): Promise<string> {
    let offset = 0;
    let url = location;
    while (offset < blob.size) {
      const end = Math.min(offset + this.#chunkSize, blob.size);
      const from = offset;
      const res = await this.#send(ref.registry, scopes, {
        method: 'PATCH',
        url,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(end - from),
          'content-range': `${from}-${end - 1}`,
        },
        body: () => sliceStream(blob, from, end),
        noRetry: true,
      });
      if (res.statusCode !== 202) throw await statusError(res, ref, 'blob chunk upload');
      await res.body.dump();
      url = new URL(requireHeader(res, 'location', 'blob chunk upload'), url).toString();
      offset = end;
    }
    return url;
  }
}

function sliceStream(blob: BlobSource, start: number, end: number): Readable {
  const source = blob.open();
  // BlobSource streams start at 0; skip to `start` and stop at `end` without buffering.
  let position = 0;
  const slicer = new Transform({
    transform(chunk: Buffer, _e, cb) {
      const chunkStart = position;
      position += chunk.length;
      const s = Math.max(start - chunkStart, 0);
      const e = Math.min(end - chunkStart, chunk.length);
      if (e > s) this.push(chunk.subarray(s, e));
      if (position >= end) {
        source.unpipe(slicer);
        source.destroy();
        this.push(null);
      }
      cb();
    },
  });
  // pipe() does not forward errors: a read error of the source must fail the PATCH body, not hang it.
  source.on('error', (err) => slicer.destroy(err));
  return source.pipe(slicer);
}

/** Tokens are cached per credential: a hash, so no secret is kept as a map key. */
function credentialFingerprint(cred: Credential | undefined): string {
  if (!cred) return '|anonymous';
  return `|${createHash('sha256').update(`${cred.username ?? ''}\0${cred.password ?? ''}\0${cred.identityToken ?? ''}`).digest('hex').slice(0, 16)}`;
}

function withAuth(req: HttpRequest, auth: string | undefined): HttpRequest {
  return auth ? { ...req, headers: { ...req.headers, authorization: auth } } : req;
}

function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

function requireHeader(res: HttpResponse, name: string, what: string): string {
  const v = header(res, name);
  if (!v) throw new DiginfraError('REGISTRY_ERROR', `${what}: registry sent no ${name} header`);
  return v;
}

function authError(registry: string, credential: Credential | boolean | undefined, message: string): DiginfraError {
  const origin = typeof credential === 'object' ? credential.origin : undefined;
  return new DiginfraError('AUTH_REQUIRED', message, {
    hint: origin
      ? `the credentials for ${registry} come from ${origin}: correct them there`
      : credential
        ? `the credentials for ${registry} were rejected: run \`diginfractl repo login ${registry}\` again`
        : `run \`diginfractl repo login ${registry}\``,
  });
}

/** Maps a non-success answer to an error that names the thing asked for. */
async function statusError(res: HttpResponse, ref: OciReference, what: string): Promise<DiginfraError> {
  const detail = await readErrorBody(res);
  const name = ref.tag || ref.digest ? formatReference(ref) : `${ref.registry}/${ref.repository}`;
  const suffix = detail ? ` (${detail})` : '';
  switch (res.statusCode) {
    case 404:
      return new DiginfraError('NOT_FOUND', `${what} not found: ${name}${suffix}`, {
        hint: /manifest/.test(what) && ref.tag ? `list the tags with \`diginfractl artifact info ${ref.registry}/${ref.repository}\`` : undefined,
      });
    case 401:
    case 403:
      return authError(ref.registry, res.statusCode === 403, `${ref.registry} denied ${what} for ${name} (${res.statusCode})${suffix}`);
    case 429: {
      const wait = parseRetryAfter(res.headers['retry-after']);
      return new DiginfraError('RATE_LIMITED', `${ref.registry} is rate limiting requests${wait ? `; it asks to wait ${Math.ceil(wait / 1000)} s` : ''}`, {
        hint: 'try again later, log in for a higher limit, or use a mirror (registry.mirrors)',
        ...(wait !== undefined && { retryAfterMs: wait }),
      });
    }
    default:
      return new DiginfraError('REGISTRY_ERROR', `${what} for ${name}: ${ref.registry} answered ${res.statusCode}${suffix}`);
  }
}

export { isIndexMediaType };
export type { Descriptor };

/** Bytes of a local file as a BlobSource, for uploads. */
export async function fileBlob(path: string): Promise<BlobSource> {
  const size = (await stat(path)).size;
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return { digest: `sha256:${hash.digest('hex')}`, size, open: () => createReadStream(path) };
}

/** An in-memory BlobSource for small content (configs, manifests). */
export function bufferBlob(data: Buffer): BlobSource {
  return { digest: sha256Digest(data), size: data.length, open: () => Readable.from([data]) };
}
