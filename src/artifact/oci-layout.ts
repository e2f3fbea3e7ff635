/**
 * An OCI image layout on disk (image-spec `image-layout.md`): `oci-layout`, `index.json` (tags as the
 * `org.opencontainers.image.ref.name` annotation of its entries) and content-addressed
 * `blobs/sha256/<hex>`, manifests included. `repo copy` reads and writes one, to carry artifacts into
 * an air-gapped network on a disk (`oci:DIR[:TAG]`, as skopeo and ORAS name it). Every blob read is
 * checked against its digest; every write is a temp file, fsync and rename, index.json included.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DiginfraError, messageOf } from '../errors.js';
import type { ArtifactSource, Descriptor, FetchedManifest } from '../registry/index.js';
import { writeFileAtomic } from '../util/index.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const INDEX_MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface LayoutRef {
  dir: string;
  tag?: string;
  digest?: string;
}

/** `oci:DIR`, `oci:DIR:TAG` or `oci:DIR@sha256:<hex>`; undefined for anything else (a registry reference). */
export function parseLayoutRef(text: string): LayoutRef | undefined {
  if (!text.startsWith('oci:')) return undefined;
  const rest = text.slice(4);
  const at = rest.lastIndexOf('@');
  if (at > 0 && /^sha256:[a-f0-9]{64}$/.test(rest.slice(at + 1))) return { dir: rest.slice(0, at), digest: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && TAG_RE.test(rest.slice(colon + 1))) return { dir: rest.slice(0, colon), tag: rest.slice(colon + 1) };
  if (rest === '') throw new DiginfraError('REF_INVALID', `"${text}" names no directory; write oci:DIR[:TAG]`);
  return { dir: rest };
}

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: (Descriptor & { annotations?: Record<string, string> })[];
}

export class OciLayout {
  #ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  /** Makes `dir` a layout (its blobs dir and `oci-layout` file) before the first write. */
  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      if (!(await stat(join(this.dir, 'oci-layout')).then(() => true, () => false))) {
        await writeFileAtomic(join(this.dir, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
      }
    })();
    return this.#ready;
  }

  blobPath(digest: string): string {
    const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
    if (!m) throw new DiginfraError('DIGEST_MISMATCH', `unsupported digest "${digest}" in OCI layout ${this.dir}`);
    return join(this.dir, 'blobs', 'sha256', m[1]!);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return stat(this.blobPath(digest)).then((s) => s.isFile(), () => false);
  }

  /** The path of a blob, checked against its digest and size. */
  async blobFile(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<string> {
    const path = this.blobPath(desc.digest);
    const hash = createHash('sha256');
    try {
      const st = await stat(path);
      if (st.size !== desc.size) throw new DiginfraError('SIZE_MISMATCH', `${path} is ${st.size} bytes, expected ${desc.size}`);
      await pipeline(createReadStream(path), hash);
    } catch (err) {
      if (err instanceof DiginfraError) throw err;
      throw new DiginfraError('NOT_FOUND', `OCI layout ${this.dir} lacks blob ${desc.digest} (${messageOf(err)})`, { cause: err });
    }
    if (`sha256:${hash.digest('hex')}` !== desc.digest) throw new DiginfraError('DIGEST_MISMATCH', `${path} does not hash to ${desc.digest}; the layout is damaged`);
    return path;
  }

  /** Copies `file` in as the blob `digest` (temp file, fsync, rename), unless it is there already. */
  async putBlobFile(digest: string, file: string): Promise<void> {
    if (await this.hasBlob(digest)) return;
    const path = this.blobPath(digest);
    await this.#init();
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      await pipeline(createReadStream(file), createWriteStream(tmp, { flush: true }));
      await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Stores a small blob from memory (temp file, fsync, rename), unless it is there already. */
  async putBlobBytes(digest: string, bytes: Buffer): Promise<void> {
    if (await this.hasBlob(digest)) return;
    await this.#init();
    await writeFileAtomic(this.blobPath(digest), bytes, { mode: 0o644 });
  }

  async #index(): Promise<IndexJson> {
    try {
      return JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as IndexJson;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [] };
      throw new DiginfraError('ARTIFACT_INVALID', `${join(this.dir, 'index.json')} is not an OCI layout index: ${messageOf(err)}`, { cause: err });
    }
  }

  /** A manifest by tag or digest. */
  async fetchManifest(ref: { tag?: string; digest?: string }): Promise<FetchedManifest> {
    let desc: Descriptor | undefined;
    if (ref.digest !== undefined) {
      const size = (await stat(this.blobPath(ref.digest)).catch(() => undefined))?.size;
      if (size === undefined) throw new DiginfraError('NOT_FOUND', `OCI layout ${this.dir} has no manifest ${ref.digest}`);
      desc = { mediaType: (await this.#index()).manifests.find((m) => m.digest === ref.digest)?.mediaType ?? '', digest: ref.digest, size };
    } else {
      const tag = ref.tag ?? 'latest';
      desc = (await this.#index()).manifests.find((m) => m.annotations?.[REF_NAME] === tag);
      if (!desc) throw new DiginfraError('NOT_FOUND', `OCI layout ${this.dir} has no tag ${tag}`);
    }
    const bytes = await readFile(await this.blobFile(desc));
    const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    const mediaType = desc.mediaType || (typeof json.mediaType === 'string' ? json.mediaType : 'application/vnd.oci.image.manifest.v1+json');
    return { descriptor: { mediaType, digest: desc.digest, size: bytes.length }, bytes, json };
  }

  /** Stores a manifest (as a blob); with `tag`, points the tag at it in index.json. */
  async putManifest(bytes: Buffer, desc: Descriptor, tag?: string): Promise<void> {
    await this.putBlobBytes(desc.digest, bytes);
    await this.#init();
    if (tag === undefined) return;
    const index = await this.#index();
    index.manifests = [...index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag), { mediaType: desc.mediaType, digest: desc.digest, size: desc.size, annotations: { [REF_NAME]: tag } }];
    await writeFileAtomic(join(this.dir, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  }
}

/**
 * A layout as an artifact source: what `resolveArtifact` and `extractArtifact` (and signature
 * verification) read, by tag or digest; the reference's registry and repository are ignored. Every
 * blob is checked against its digest before it is read.
 */
export function layoutSource(layout: OciLayout): ArtifactSource {
  return {
    fetchManifest: (ref) => layout.fetchManifest({ ...(ref.tag !== undefined && { tag: ref.tag }), ...(ref.digest !== undefined && { digest: ref.digest }) }),
    readBlob: async (_ref, desc, maxBytes = 1024 * 1024) => {
      if (desc.size > maxBytes) throw new DiginfraError('ARTIFACT_INVALID', `blob ${desc.digest} is ${desc.size} bytes, more than the ${maxBytes} allowed here`);
      return readFile(await layout.blobFile(desc));
    },
    openBlob: async (_ref, desc) => createReadStream(await layout.blobFile(desc)),
  };
}
