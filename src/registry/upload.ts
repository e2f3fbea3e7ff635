/**
 * Pushing blobs: a cross-repository mount when the registry has the blob in another repository, else
 * POST + PUT (monolithic) or POST + PATCH... + PUT (chunked) for blobs larger than the chunk size.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import type { OciReference } from '../reference/index.js';
import type { AuthSession } from './auth/session.js';
import { repositoryScope } from './auth/scope.js';
import { blobExists } from './blobs.js';
import { fileDigest, sha256Digest } from './digest.js';
import { statusError } from './errors.js';
import { header, requireHeader } from './headers.js';

export interface BlobSource {
  digest: string;
  size: number;
  /** Opens the content from the start; called again on a retry. */
  open: () => Readable;
}

/** Bytes of a local file as a BlobSource, for uploads. */
export async function fileBlob(path: string): Promise<BlobSource> {
  const size = (await stat(path)).size;
  return { digest: await fileDigest(path), size, open: () => createReadStream(path) };
}

/** An in-memory BlobSource for small content (configs, manifests). */
export function bufferBlob(data: Buffer): BlobSource {
  return { digest: sha256Digest(data), size: data.length, open: () => Readable.from([data]) };
}

/**
 * Asks the registry to mount `digest` from another repository of it (a cross-repository blob mount);
 * true when it did. A registry that answers with an upload session instead has it cancelled.
 */
export async function mountBlob(session: AuthSession, ref: OciReference, digest: string, fromRepository: string): Promise<boolean> {
  const scopes = [repositoryScope(ref.repository, ['pull', 'push']), repositoryScope(fromRepository, ['pull'])];
  const url = `${session.url(ref.registry, `/v2/${ref.repository}/blobs/uploads/`)}?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`;
  const res = await session.send(ref.registry, scopes, { method: 'POST', url, headers: { 'content-length': '0' } });
  await res.body.dump();
  if (res.statusCode === 201) return true;
  if (res.statusCode !== 202) throw await statusError(res, ref, 'blob mount');
  const location = header(res, 'location');
  if (location) {
    const cancel = await session.send(ref.registry, scopes, { method: 'DELETE', url: new URL(location, url).toString() }).catch(() => undefined);
    await cancel?.body.dump();
  }
  return false;
}

/**
 * Uploads a blob unless the repository already has it: a cross-repository mount when `mountFrom`
 * names another repository of the same registry, else monolithic, or in `chunkSize` PATCHes when the
 * blob is larger.
 */
export async function pushBlob(
  session: AuthSession,
  ref: OciReference,
  blob: BlobSource,
  opts: { mountFrom?: string | undefined; chunkSize: number },
): Promise<'exists' | 'mounted' | 'uploaded'> {
  if (await blobExists(session, ref, blob.digest)) return 'exists';
  const scopes = [repositoryScope(ref.repository, ['pull', 'push'])];
  let startUrl = session.url(ref.registry, `/v2/${ref.repository}/blobs/uploads/`);
  if (opts.mountFrom && opts.mountFrom !== ref.repository) {
    scopes.push(repositoryScope(opts.mountFrom, ['pull']));
    startUrl += `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(opts.mountFrom)}`;
  }
  const start = await session.send(ref.registry, scopes, { method: 'POST', url: startUrl, headers: { 'content-length': '0' } });
  await start.body.dump();
  if (start.statusCode === 201) return 'mounted';
  if (start.statusCode !== 202) throw await statusError(start, ref, 'blob upload');
  let location = new URL(requireHeader(start, 'location', 'blob upload'), startUrl).toString();

  if (blob.size > opts.chunkSize) {
    location = await uploadChunks(session, ref, scopes, location, blob, opts.chunkSize);
    const done = await session.send(ref.registry, scopes, {
      method: 'PUT',
      url: withQuery(location, { digest: blob.digest }),
      headers: { 'content-length': '0' },
      noRetry: true,
    });
    if (done.statusCode !== 201) throw await statusError(done, ref, 'blob upload');
    await done.body.dump();
    return 'uploaded';
  }
  const put = await session.send(ref.registry, scopes, {
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

/** PATCHes `blob` in `chunkSize` pieces to the upload session at `location`; returns its last Location. */
async function uploadChunks(session: AuthSession, ref: OciReference, scopes: string[], location: string, blob: BlobSource, chunkSize: number): Promise<string> {
  let offset = 0;
  let url = location;
  while (offset < blob.size) {
    const end = Math.min(offset + chunkSize, blob.size);
    const from = offset;
    const res = await session.send(ref.registry, scopes, {
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

/** Bytes `start` to `end` (exclusive) of a blob, streamed. */
export function sliceStream(blob: BlobSource, start: number, end: number): Readable {
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

function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}
