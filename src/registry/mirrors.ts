/**
 * Pull-through mirrors with fallback, as container runtimes do them (containerd's hosts.toml, Docker's
 * registry-mirrors): a read of a registry that has mirrors (`registry.mirrors`) goes to its first
 * mirror; when that mirror is down, answers 5xx, 404 or anything else that is not the content, the
 * next mirror is asked, and then the registry itself. Writes (push, delete, mounts) always go to the
 * registry itself.
 *
 * Content by digest (blobs, manifests by digest) may come from any source: it is verified against its
 * digest as it is read, and a source that served bytes that do not verify is not asked for that
 * digest again. A tag is resolved at the first source that knows it, so a mirror that lags behind
 * answers with what it has; the digest it names is then fetched with the same fallback.
 * A mirror that could not be reached at all is left out for MIRROR_DOWN_MS, so a dead mirror costs one
 * failed connection, not one per request.
 */
import type { Readable } from 'node:stream';
import type { RegistryConfig } from '../config/index.js';
import { DiginfraError, isDiginfraError, messageOf, type ErrorCode } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import { RegistryClient, type FetchedManifest, type RegistryClientOptions } from './client.js';
import type { Descriptor } from './media-types.js';

/** How long a mirror that could not be reached is left out (default 5 minutes). */
export const MIRROR_DOWN_MS = 5 * 60_000;

/** The mirrors of `host`, in the order they are tried: `registry.mirrors[host]` as a list (a string may hold several, space separated). */
export function mirrorsOf(registry: { readonly mirrors: Readonly<Record<string, string | readonly string[]>> }, host: string): string[] {
  const value = registry.mirrors[host];
  if (value === undefined) return [];
  return (typeof value === 'string' ? value.split(/\s+/) : [...value]).map((m) => m.trim()).filter(Boolean);
}

/** Where a log line about sources goes (a pino logger fits). */
export interface SourceLog {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

/** Answers of a mirror that send the read on to the next source. Anything else (a bad reference) would fail the same anywhere. */
const FALL_THROUGH: ReadonlySet<ErrorCode> = new Set(['NETWORK', 'NOT_FOUND', 'REGISTRY_ERROR', 'RATE_LIMITED', 'AUTH_REQUIRED', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'MEDIA_TYPE_UNSUPPORTED']);

function fallsThrough(err: unknown): boolean {
  // Not one of ours: a connection-level failure undici reported as is.
  return !isDiginfraError(err) || FALL_THROUGH.has(err.code);
}

export interface MirroredOptions {
  /** The mirror hosts of a registry host, in order. */
  mirrorsOf: (host: string) => string[];
  /** A client that reads a registry through `mirror` (its TLS settings, credentials, metrics). */
  clientFor: (mirror: string) => RegistryClient;
  /** Asked for only when there is something to log (a command's logger is created on first use). */
  log?: () => SourceLog;
  now?: () => number;
}

/** One place a read can be answered from: a mirror host, or the registry itself (`origin`). */
interface Source {
  host: string;
  origin: boolean;
  client: RegistryClient;
}

/**
 * The registry client of a config with mirrors: itself the client of the registries (the origin),
 * with every read tried at the mirrors first.
 */
export class MirroredRegistryClient extends RegistryClient {
  readonly #opts: MirroredOptions;
  readonly #mirrorClients = new Map<string, RegistryClient>();
  /** Mirror host -> until when it is left out (it could not be reached). */
  readonly #down = new Map<string, number>();
  /** Digest -> sources whose bytes for it did not verify (or broke off): not asked for it again. */
  readonly #badFor = new Map<string, Set<string>>();

  constructor(origin: RegistryClientOptions, opts: MirroredOptions) {
    super(origin);
    this.#opts = opts;
  }

  override async close(): Promise<void> {
    await Promise.all([super.close(), ...[...this.#mirrorClients.values()].map((c) => c.close())]);
  }

  #mirrorClient(host: string): RegistryClient {
    let c = this.#mirrorClients.get(host);
    if (!c) {
      c = this.#opts.clientFor(host);
      this.#mirrorClients.set(host, c);
    }
    return c;
  }

  /** The sources of a read of `registry`, in order: its mirrors (less those down, or bad for `digest`), then itself. */
  #sources(registry: string, digest: string | undefined): Source[] {
    const now = (this.#opts.now ?? Date.now)();
    const bad = digest !== undefined ? this.#badFor.get(digest) : undefined;
    const mirrors = this.#opts
      .mirrorsOf(registry)
      .filter((m) => (this.#down.get(m) ?? 0) <= now && !bad?.has(m))
      .map((host) => ({ host, origin: false, client: this.#mirrorClient(host) }));
    return [...mirrors, { host: registry, origin: true, client: this }];
  }

  /**
   * `read` at each source in turn until one answers. A mirror's failure that another source may not
   * have is logged and passed over; the registry's own failure is the answer.
   */
  async #fallback<T>(ref: OciReference, what: string, digest: string | undefined, read: (client: RegistryClient) => Promise<T>): Promise<{ value: T; source: Source }> {
    const sources = this.#sources(ref.registry, digest);
    for (const source of sources) {
      if (source.origin) return { value: await read(source.client), source };
      try {
        return { value: await read(source.client), source };
      } catch (err) {
        if (!fallsThrough(err)) throw err;
        if (isDiginfraError(err, 'NETWORK') || !isDiginfraError(err)) this.#down.set(source.host, (this.#opts.now ?? Date.now)() + MIRROR_DOWN_MS);
        if (digest !== undefined && (isDiginfraError(err, 'DIGEST_MISMATCH') || isDiginfraError(err, 'SIZE_MISMATCH'))) this.#markBad(digest, source.host);
        const next = sources[sources.indexOf(source) + 1]!;
        // A mirror without this repository or digest is ordinary; one that is down or failing is not.
        const log = this.#opts.log?.();
        const say = isDiginfraError(err, 'NOT_FOUND') ? log?.info : log?.warn;
        say?.call(log, `mirror ${source.host} of ${ref.registry} could not serve ${what} (${messageOf(err)}); trying ${next.origin ? `${next.host} itself` : `mirror ${next.host}`}`);
      }
    }
    throw new Error('unreachable: the registry itself is always the last source');
  }

  #markBad(digest: string, host: string): void {
    let set = this.#badFor.get(digest);
    if (!set) this.#badFor.set(digest, (set = new Set()));
    set.add(host);
  }

  /** Logs where a blob came from, for a registry that has mirrors. */
  #served(ref: OciReference, digest: string, source: Source): void {
    const where = source.origin ? `${source.host} itself` : `mirror ${source.host}`;
    this.#opts.log?.().info(`blob ${digest} of ${ref.registry}/${ref.repository} served by ${where}`);
  }

  #hasMirrors(ref: OciReference): boolean {
    return this.#opts.mirrorsOf(ref.registry).length > 0;
  }

  // Every read below: the registry's own (super) when it has no mirrors, else the mirrors first.

  override async resolve(ref: OciReference): Promise<Descriptor> {
    if (!this.#hasMirrors(ref)) return super.resolve(ref);
    const origin = (c: RegistryClient) => (c === this ? super.resolve(ref) : c.resolve(ref));
    return (await this.#fallback(ref, `manifest ${ref.digest ?? ref.tag ?? 'latest'}`, ref.digest, origin)).value;
  }

  override async fetchManifest(ref: OciReference, accept?: string[]): Promise<FetchedManifest> {
    if (!this.#hasMirrors(ref)) return super.fetchManifest(ref, accept);
    const read = (c: RegistryClient) => (c === this ? super.fetchManifest(ref, accept) : c.fetchManifest(ref, accept));
    const { value, source } = await this.#fallback(ref, `manifest ${ref.digest ?? ref.tag ?? 'latest'}`, ref.digest, read);
    this.#opts.log?.().debug(`manifest ${value.descriptor.digest} of ${ref.registry}/${ref.repository} served by ${source.origin ? `${source.host} itself` : `mirror ${source.host}`}`);
    return value;
  }

  override async listTags(ref: OciReference, pageSize?: number): Promise<string[]> {
    if (!this.#hasMirrors(ref)) return super.listTags(ref, pageSize);
    const read = (c: RegistryClient) => (c === this ? super.listTags(ref, pageSize) : c.listTags(ref, pageSize));
    return (await this.#fallback(ref, 'the tag list', undefined, read)).value;
  }

  override async referrers(ref: OciReference, digest: string, artifactType?: string): Promise<Descriptor[]> {
    if (!this.#hasMirrors(ref)) return super.referrers(ref, digest, artifactType);
    const read = (c: RegistryClient) => (c === this ? super.referrers(ref, digest, artifactType) : c.referrers(ref, digest, artifactType));
    return (await this.#fallback(ref, `the referrers of ${digest}`, undefined, read)).value;
  }

  override async blobExists(ref: OciReference, digest: string): Promise<boolean> {
    if (!this.#hasMirrors(ref)) return super.blobExists(ref, digest);
    // A mirror without the blob is a reason to ask the next source, not an answer.
    const read = async (c: RegistryClient) => {
      const has = await (c === this ? super.blobExists(ref, digest) : c.blobExists(ref, digest));
      if (!has && c !== this) throw notHere(digest);
      return has;
    };
    return (await this.#fallback(ref, `blob ${digest}`, digest, read)).value;
  }

  override async readBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes?: number): Promise<Buffer> {
    if (!this.#hasMirrors(ref)) return super.readBlob(ref, desc, maxBytes);
    const read = (c: RegistryClient) => (c === this ? super.readBlob(ref, desc, maxBytes) : c.readBlob(ref, desc, maxBytes));
    const { value, source } = await this.#fallback(ref, `blob ${desc.digest}`, desc.digest, read);
    this.#served(ref, desc.digest, source);
    return value;
  }

  /**
   * The stream of the first source that answers. The digest is verified as the bytes flow; when they
   * do not verify (or the mirror breaks off), that mirror is not asked for this digest again, so the
   * caller's retry (content/ingest.ts) goes to the next source.
   */
  override async openBlob(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    if (!this.#hasMirrors(ref)) return super.openBlob(ref, desc);
    const read = (c: RegistryClient) => (c === this ? super.openBlob(ref, desc) : c.openBlob(ref, desc));
    const { value, source } = await this.#fallback(ref, `blob ${desc.digest}`, desc.digest, read);
    if (!source.origin) value.once('error', () => this.#markBad(desc.digest, source.host));
    value.once('end', () => this.#served(ref, desc.digest, source));
    return value;
  }
}

function notHere(digest: string): DiginfraError {
  return new DiginfraError('NOT_FOUND', `blob ${digest} is not there`);
}
