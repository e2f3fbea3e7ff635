/**
 * Ingest of a registry blob into a local file (the blob cache's): streamed from the registry, verified
 * while it flows (size and digest, RegistryClient.openBlob), written atomically. A dropped connection
 * starts the download over, as the client retries its requests.
 */
import { Transform, pipeline, type Readable } from 'node:stream';
import type { OciReference } from '../reference/index.js';
import { backoffDelay, BrokenDownloadError, isRetryableNetworkError, networkError, pause, type Descriptor, type RegistryClient } from '../registry/index.js';
import { writeStreamAtomic } from '../util/index.js';

/** What ingest needs of a client: verified blob streams, and its retry policy. */
export type BlobReader = Pick<RegistryClient, 'openBlob' | 'transport'>;

/**
 * Downloads a blob into `dest`, which is either absent or complete and verified afterwards.
 * `onBytes` is told of every chunk received (a retried download counts again). `signal` abandons the
 * download (no retry; the temp file is removed) and rejects with its reason.
 */
export async function ingestBlob(
  client: BlobReader,
  ref: OciReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  dest: string,
  onBytes?: (n: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const policy = client.transport.retryPolicy;
  const open = async (): Promise<Readable> => {
    const body = await client.openBlob(ref, desc, { signal });
    // pipeline (not pipe) so that an error of `body` reaches the counter, and so the file.
    return onBytes ? pipeline(body, counter(onBytes), () => undefined) : body;
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await writeStreamAtomic(dest, open);
      return;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      // A broken download names the blob already; the connection's error (its cause) says whether to start over.
      const broken = err instanceof BrokenDownloadError;
      if (!isRetryableNetworkError(broken ? err.cause : err)) throw err;
      if (attempt + 1 >= policy.attempts) throw broken ? err : networkError(ref.registry, err);
      await pause(backoffDelay(attempt, policy), signal);
    }
  }
}

function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}
