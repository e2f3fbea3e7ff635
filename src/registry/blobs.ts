/**
 * Reading blobs: existence (HEAD) and content as a stream that verifies size and digest as it flows.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
 */
import { pipeline, type Readable } from 'node:stream';
import { DiginfraError, messageOf } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import type { AuthSession } from './auth/session.js';
import { repositoryScope } from './auth/scope.js';
import { VerifyingStream } from './digest.js';
import { statusError } from './errors.js';
import { header } from './headers.js';
import { errorCodeOf } from './transport.js';
import type { Descriptor } from './media-types.js';

/** Redirects followed for one blob GET (registry to storage, storage to CDN...). */
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export async function blobExists(session: AuthSession, ref: OciReference, digest: string): Promise<boolean> {
  const res = await session.send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
    method: 'HEAD',
    url: session.url(ref.registry, `/v2/${ref.repository}/blobs/${digest}`),
  });
  await res.body.dump();
  if (res.statusCode === 200) return true;
  if (res.statusCode === 404) return false;
  throw await statusError(res, ref, `blob ${digest}`);
}

/**
 * GET of a blob as a stream that verifies size and digest as it flows. Redirects to blob storage
 * are followed by hand so the registry's Authorization never goes to another host. `signal` aborts
 * the request and the stream (with its reason).
 */
export async function openBlob(session: AuthSession, ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, opts: { signal?: AbortSignal | undefined } = {}): Promise<Readable> {
  const scopes = [repositoryScope(ref.repository, ['pull'])];
  let url = session.url(ref.registry, `/v2/${ref.repository}/blobs/${desc.digest}`);
  const origin = new URL(url).host;
  const signal = opts.signal !== undefined ? { signal: opts.signal } : {};
  let res = await session.send(ref.registry, scopes, { method: 'GET', url, ...signal });
  for (let hop = 0; REDIRECT_STATUSES.has(res.statusCode); hop++) {
    const location = header(res, 'location');
    await res.body.dump();
    if (!location || hop >= MAX_REDIRECTS) {
      throw new DiginfraError('REGISTRY_ERROR', `blob ${desc.digest}: too many redirects or no Location`);
    }
    url = new URL(location, url).toString();
    // Storage backends (S3, GCS, CDNs) authenticate with the signed URL itself.
    res = new URL(url).host === origin ? await session.send(ref.registry, scopes, { method: 'GET', url, ...signal }) : await session.transport.send(ref.registry, { method: 'GET', url, ...signal });
  }
  if (res.statusCode !== 200) throw await statusError(res, ref, `blob ${desc.digest}`);
  const length = Number(header(res, 'content-length'));
  if (Number.isFinite(length) && length !== desc.size) {
    // Refused before a byte of the body is read: the connection is dropped rather than drained.
    abandon(res.body);
    throw new DiginfraError('SIZE_MISMATCH', `blob ${desc.digest} is ${length} bytes, manifest says ${desc.size}`);
  }
  const verifier = new VerifyingStream(desc, `blob ${desc.digest}`);
  // Registered before pipeline's own listener, so the caller gets the error that names the download.
  res.body.on('error', (err: unknown) => verifier.destroy(brokenDownload(ref, desc, verifier.bytes, err, session.transport.readTimeoutMs)));
  // Errors of either side reach the caller through `verifier`; the callback only stops them escaping.
  pipeline(res.body, verifier, () => {});
  return verifier;
}

/**
 * A blob download whose connection broke or went silent mid-body (NETWORK); `cause` is the
 * connection's own error, which tells whether starting over may help (content/ingest.ts).
 */
export class BrokenDownloadError extends DiginfraError {}

/**
 * A connection that broke (or went silent) mid-body, as an error naming the registry, the repository
 * and the blob: undici's own says only "other side closed". Our errors and aborts pass unchanged.
 */
function brokenDownload(ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, received: number, err: unknown, readTimeoutMs: number): Error {
  if (err instanceof DiginfraError || (err instanceof Error && err.name === 'AbortError')) return err;
  const why = errorCodeOf(err) === 'UND_ERR_BODY_TIMEOUT' ? `the registry sent nothing for ${readTimeoutMs / 1000} s (registry.timeouts.read)` : messageOf(err);
  return new BrokenDownloadError('NETWORK', `download of blob ${desc.digest} from ${ref.registry}/${ref.repository} broke after ${received} of ${desc.size} bytes: ${why}`, {
    cause: err,
    hint: `the connection to ${ref.registry} was closed or went silent mid-download; nothing was written, try again`,
  });
}

/** A small blob (a config) read into memory, verified; refuses anything over `maxBytes`. */
export async function readBlob(session: AuthSession, ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes: number): Promise<Buffer> {
  if (desc.size > maxBytes) {
    throw new DiginfraError('ARTIFACT_INVALID', `blob ${desc.digest} is ${desc.size} bytes, more than the ${maxBytes} allowed here`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of await openBlob(session, ref, desc)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Drops a response body nobody will read. Destroying an undici body makes it emit 'error'
 * (UND_ERR_ABORTED, a tick later when nothing read it yet); without a listener that ends the process.
 */
function abandon(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
