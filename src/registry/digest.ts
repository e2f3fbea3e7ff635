/**
 * Content digests (`<algorithm>:<hex>`, sha256 or sha512) and the stream that checks a blob against its
 * descriptor while it flows. https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DiginfraError } from '../errors.js';

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The algorithm and hex of a digest we can check; DIGEST_MISMATCH for any other algorithm. */
export function digestParts(digest: string): { algorithm: 'sha256' | 'sha512'; hex: string } {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex || (algorithm !== 'sha256' && algorithm !== 'sha512')) {
    throw new DiginfraError('DIGEST_MISMATCH', `unsupported digest "${digest}"`);
  }
  return { algorithm, hex };
}

/** The digest of a file's bytes under `algorithm`, read as a stream. */
export async function fileDigest(path: string, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path), hash);
  return `${algorithm}:${hash.digest('hex')}`;
}

/**
 * Passes bytes through while hashing and counting them; fails the stream when the content is longer
 * than promised or, at the end, when size or digest differ. Nothing is buffered.
 */
export class VerifyingStream extends Transform {
  readonly #hash;
  readonly #algorithm: string;
  readonly #expected: { digest: string; size: number };
  readonly #what: string;
  #bytes = 0;

  constructor(expected: { digest: string; size: number }, what: string) {
    super();
    this.#expected = expected;
    this.#what = what;
    this.#algorithm = digestParts(expected.digest).algorithm;
    this.#hash = createHash(this.#algorithm);
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
    const actual = `${this.#algorithm}:${this.#hash.digest('hex')}`;
    if (actual !== this.#expected.digest) {
      cb(new DiginfraError('DIGEST_MISMATCH', `${this.#what} has digest ${actual}, expected ${this.#expected.digest}`, {
        hint: 'the registry served corrupted or tampered content; nothing was written',
      }));
      return;
    }
    cb();
  }
}
