/**
 * Fetching an index from its URL: https:// and http:// through undici (conditional GET with ETag /
 * If-Modified-Since, basic auth sent to the index's own origin only, redirects followed by hand, the
 * body read up to MAX_INDEX_BYTES and no further), file:// URLs and plain paths from disk.
 * No parsing here; see validate.ts.
 */
import { open, stat } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiginfraError, messageOf } from '../errors.js';
import { MAX_INDEX_BYTES } from './validate.js';
import type { IndexCredentials } from './types.js';
import { isLocalIndex } from './url-kind.js';

export interface FetchIndexRequest {
  /** Index name, for messages. */
  name: string;
  url: string;
  credentials?: IndexCredentials;
  /** Validators from the last fetch; with them, an unchanged index answers `unchanged`. */
  etag?: string;
  lastModified?: string;
  sourceMtimeMs?: number;
  sourceSize?: number;
  /** default MAX_INDEX_BYTES (10 MiB) */
  maxBytes?: number;
  /** Per request, for the headers and between body chunks; default 30 s. */
  timeoutMs?: number;
  /** For the connection (DNS and TCP/TLS); default timeoutMs. */
  connectTimeoutMs?: number;
  /** PEM CA bundle to trust for https:// */
  caFile?: string;
  /** Skip TLS verification (testing only). */
  insecure?: boolean;
  /** Proxy variables (HTTPS_PROXY, NO_PROXY, ...); default process.env. */
  env?: Record<string, string | undefined>;
  /** Authorization headers for the index's own origin (gs://, s3://), instead of basic credentials. */
  authHeaders?: Record<string, string>;
}

export type FetchIndexResult =
  | { status: 'unchanged' }
  | { status: 'fetched'; text: string; etag?: string; lastModified?: string; sourceMtimeMs?: number; sourceSize?: number };

const MAX_REDIRECTS = 5;
const DEFAULT_TIMEOUT_MS = 30_000;

export { isLocalIndex };

export function isPlainHttp(url: string): boolean {
  return /^http:\/\//i.test(url);
}

/** A plain path made absolute (what `index add` stores); URLs unchanged. */
export function normalizeIndexUrl(url: string, cwd = process.cwd()): string {
  return isLocalIndex(url) && !url.startsWith('file:') ? resolve(cwd, url) : url;
}

function tooLarge(req: FetchIndexRequest, where: string): DiginfraError {
  const max = req.maxBytes ?? MAX_INDEX_BYTES;
  const mib = max % (1024 * 1024) === 0 ? ` (${max / 1024 / 1024} MiB)` : '';
  return new DiginfraError('INDEX_INVALID', `index "${req.name}": ${where} is larger than ${max} bytes${mib}; refusing to read it`, {
    hint: 'check the URL points at an index file; the previous cached copy, if any, stays in use',
  });
}

export async function fetchIndex(req: FetchIndexRequest): Promise<FetchIndexResult> {
  if (isLocalIndex(req.url)) return fetchFile(req);
  if (isGcsIndex(req.url)) return fetchGcs(req);
  if (isS3Index(req.url)) return fetchS3(req);
  return fetchHttp(req);
}

/**
 * `s3://BUCKET/KEY` and `gs://BUCKET/OBJECT`, the bucket held to the providers' naming rules: a
 * bucket becomes (part of) the host a signed request goes to, so `@`, `?` or `#` must never pass.
 */
export const S3_INDEX_RE = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/i;
export const GCS_INDEX_RE = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])\/(.+)$/i;

export function isS3Index(url: string): boolean {
  return /^s3:\/\//i.test(url);
}

/**
 * `s3://BUCKET/KEY` (falcoctl's s3 backend): a GET of the object, signed (SigV4) with the AWS
 * credentials the chain of src/registry/auth/aws.ts finds, or anonymous (a public bucket) when there
 * are none. The bucket's region is `AWS_REGION` (or `AWS_DEFAULT_REGION`, default us-east-1);
 * `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) names another S3-compatible endpoint, path-style.
 */
async function fetchS3(req: FetchIndexRequest, regionOverride?: string): Promise<FetchIndexResult> {
  const m = S3_INDEX_RE.exec(req.url);
  if (!m) throw new DiginfraError('USAGE', `index "${req.name}": ${req.url} must be s3://BUCKET/KEY (a valid bucket name)`);
  const [, bucket, key] = m as unknown as [string, string, string];
  const env = req.env ?? process.env;
  const { regionOf, s3PathEncode, sharedAwsSource, signV4 } = await import('../registry/auth/aws.js');
  const region = regionOverride ?? regionOf(env);
  // Encoded as SigV4 encodes it, so what is sent is what was signed (`(`, `!`, spaces...).
  const path = s3PathEncode(key);
  const url = s3ObjectUrl(bucket, path, region, env);
  const credentials = await sharedAwsSource({ env }).get(req.url);
  const authHeaders = credentials ? signV4({ method: 'GET', url: new URL(url), headers: {}, region, service: 's3', credentials }) : undefined;
  // Cloud credentials only: basic credentials stored under this index's name are not for AWS.
  const { credentials: _basic, ...rest } = req;
  try {
    return await fetchHttp(
      { ...rest, url, ...(authHeaders && { authHeaders }) },
      credentials
        ? `the AWS credentials from ${credentials.source} may not read it: allow s3:GetObject on arn:aws:s3:::${bucket}/${key} (and check AWS_REGION is the bucket's, ${region} now)`
        : `no AWS credentials were found, so the bucket was read anonymously: give this node or pod a role (IRSA, EKS Pod Identity, instance profile) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
    );
  } catch (err) {
    // S3 names the bucket's region when asked in another one: once, in that region.
    if (err instanceof WrongRegion && regionOverride === undefined && err.region !== region) return fetchS3(req, err.region);
    throw err;
  }
}

/** Virtual-hosted style on AWS; path style for another endpoint (AWS_ENDPOINT_URL_S3) and for a bucket with dots (TLS names). */
function s3ObjectUrl(bucket: string, path: string, region: string, env: Record<string, string | undefined>): string {
  const endpoint = (env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL)?.replace(/\/+$/, '');
  if (endpoint) return `${endpoint}/${bucket}/${path}`;
  const url = bucket.includes('.') ? `https://s3.${region}.amazonaws.com/${bucket}/${path}` : `https://${bucket}.s3.${region}.amazonaws.com/${path}`;
  // A backstop to the bucket rule: a signed request goes to AWS only.
  if (!new URL(url).hostname.endsWith('.amazonaws.com')) throw new DiginfraError('USAGE', `s3://${bucket}: not a bucket name, and ${new URL(url).host} is not AWS`);
  return url;
}

/** S3's answer (301, or 400 for a signature in the wrong region) naming the bucket's region. */
class WrongRegion extends DiginfraError {
  constructor(
    readonly region: string,
    message: string,
  ) {
    super('INDEX_FETCH_FAILED', message, { hint: `set AWS_REGION=${region}` });
  }
}

export function isGcsIndex(url: string): boolean {
  return /^gs:\/\//i.test(url);
}

/**
 * `gs://BUCKET/OBJECT` (falcoctl's gs backend): Cloud Storage's JSON API, `alt=media`, with a
 * read-only token from Google's application default credentials (src/registry/auth/google.ts); on a
 * machine with no Google identity at all, anonymously (a public bucket). `DIGINFRACTL_GCS_ENDPOINT`
 * replaces https://storage.googleapis.com (a Private Service Connect endpoint, say) and gets the
 * token too; `STORAGE_EMULATOR_HOST`, as Google's client libraries read it, is an emulator: no token
 * is sent there. Conditional requests as for https.
 */
async function fetchGcs(req: FetchIndexRequest): Promise<FetchIndexResult> {
  const m = GCS_INDEX_RE.exec(req.url);
  if (!m) throw new DiginfraError('USAGE', `index "${req.name}": ${req.url} must be gs://BUCKET/OBJECT (a valid bucket name)`);
  const [, bucket, object] = m as unknown as [string, string, string];
  const env = req.env ?? process.env;
  const { base, authenticated } = gcsEndpoint(env);
  const url = `${base}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(object)}?alt=media`;
  let token: string | undefined;
  if (authenticated) {
    const { STORAGE_READ_SCOPE, sharedGoogleSource } = await import('../registry/auth/google.js');
    token = await sharedGoogleSource({ env, scope: STORAGE_READ_SCOPE }).tokenIfAny(req.url);
  }
  // Cloud credentials only: basic credentials stored under this index's name are not for Google.
  const { credentials: _basic, ...rest } = req;
  return fetchHttp(
    { ...rest, url, ...(token !== undefined && { authHeaders: { authorization: `Bearer ${token}` } }) },
    `${authenticated && token === undefined ? 'this machine has no Google credentials, so the bucket was read anonymously; ' : ''}give the Google service account of this node (or GOOGLE_APPLICATION_CREDENTIALS) storage.objects.get on gs://${bucket}`,
  );
}

/** Where gs:// objects are read, and whether Google credentials go there. */
function gcsEndpoint(env: Record<string, string | undefined>): { base: string; authenticated: boolean } {
  const emulator = env.STORAGE_EMULATOR_HOST;
  if (emulator) return { base: (/^https?:\/\//i.test(emulator) ? emulator : `http://${emulator}`).replace(/\/+$/, ''), authenticated: false };
  const endpoint = env.DIGINFRACTL_GCS_ENDPOINT?.replace(/\/+$/, '');
  if (!endpoint) return { base: 'https://storage.googleapis.com', authenticated: true };
  const u = new URL(endpoint);
  // A token over plain HTTP only to this machine itself.
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname))) {
    throw new DiginfraError('USAGE', `DIGINFRACTL_GCS_ENDPOINT ${endpoint} must be https:// (Google credentials are sent to it)`);
  }
  return { base: endpoint, authenticated: true };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);
}

/** The host a gs:// or s3:// index is actually read from (TLS settings are looked up for it); the URL's own host otherwise. */
export function contactedHost(url: string, env: Record<string, string | undefined> = process.env): string | undefined {
  try {
    if (isGcsIndex(url)) return new URL(gcsEndpoint(env).base).host;
    if (isS3Index(url)) {
      const bucket = S3_INDEX_RE.exec(url)?.[1];
      if (bucket === undefined) return undefined;
      return new URL(s3ObjectUrl(bucket, '', env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1', env)).host;
    }
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

async function fetchFile(req: FetchIndexRequest): Promise<FetchIndexResult> {
  const path = req.url.startsWith('file:') ? fileURLToPath(req.url) : resolve(req.url);
  const max = req.maxBytes ?? MAX_INDEX_BYTES;
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DiginfraError('NOT_FOUND', `index "${req.name}": ${path} does not exist`, { hint: 'check the path or file:// URL of the index' });
    }
    throw new DiginfraError('IO', `index "${req.name}": cannot read ${path}: ${messageOf(err)}`, { cause: err });
  }
  if (!info.isFile()) throw new DiginfraError('INDEX_INVALID', `index "${req.name}": ${path} is not a regular file`);
  if (info.size > max) throw tooLarge(req, path);
  if (req.sourceMtimeMs === info.mtimeMs && req.sourceSize === info.size) return { status: 'unchanged' };
  const fh = await open(path, 'r');
  try {
    // Read at most max+1 bytes: the file may have grown since stat().
    const buf = Buffer.alloc(Math.min(max + 1, info.size + 65536));
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > max) throw tooLarge(req, path);
      if (n === buf.length) break;
    }
    return { status: 'fetched', text: buf.subarray(0, n).toString('utf8'), sourceMtimeMs: info.mtimeMs, sourceSize: info.size };
  } finally {
    await fh.close();
  }
}

function statusText(code: number): string {
  const texts: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 410: 'Gone', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
  return texts[code] ? `${code} ${texts[code]}` : String(code);
}

async function fetchHttp(req: FetchIndexRequest, authHint?: string): Promise<FetchIndexResult> {
  const [{ request }, { createDispatcher }] = await Promise.all([import('../registry/undici.js'), import('../registry/transport.js')]);
  const timeout = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const max = req.maxBytes ?? MAX_INDEX_BYTES;
  const dispatcher = createDispatcher({
    ...(req.insecure === true && { insecure: true }),
    ...(req.caFile !== undefined && { ca: readCa(req.name, req.caFile) }),
    connectTimeoutMs: req.connectTimeoutMs ?? timeout,
    readTimeoutMs: timeout,
    env: req.env ?? process.env,
  });
  const origin = new URL(req.url).origin;
  try {
    let url = req.url;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        accept: 'application/yaml, application/x-yaml, text/yaml, text/plain;q=0.9, */*;q=0.1',
        'user-agent': 'diginfractl/0.1.0',
      };
      if (req.etag) headers['if-none-match'] = req.etag;
      if (req.lastModified) headers['if-modified-since'] = req.lastModified;
      // Credentials go to the index's own origin only, never to where a redirect points elsewhere.
      if (req.credentials && new URL(url).origin === origin) {
        headers.authorization = `Basic ${Buffer.from(`${req.credentials.username}:${req.credentials.password}`).toString('base64')}`;
      } else if (req.authHeaders !== undefined && new URL(url).origin === origin) {
        Object.assign(headers, req.authHeaders);
      }
      let res;
      try {
        res = await request(url, { method: 'GET', headers, dispatcher });
      } catch (err) {
        throw new DiginfraError('NETWORK', `index "${req.name}": cannot reach ${url}: ${networkMessage(err)}`, {
          cause: err,
          hint: 'check the URL and your network; the previous cached copy, if any, stays in use',
        });
      }
      const { statusCode } = res;
      const header = (n: string): string | undefined => {
        const v = res.headers[n];
        return Array.isArray(v) ? v[0] : v;
      };
      const bucketRegion = header('x-amz-bucket-region');
      if ((statusCode === 301 || statusCode === 400) && bucketRegion) {
        await res.body.dump();
        throw new WrongRegion(bucketRegion, `index "${req.name}": ${url} answered ${statusText(statusCode)}: the bucket is in region ${bucketRegion}`);
      }
      if ([301, 302, 303, 307, 308].includes(statusCode)) {
        await res.body.dump();
        const location = header('location');
        if (!location) throw new DiginfraError('INDEX_FETCH_FAILED', `index "${req.name}": ${url} answered ${statusCode} without a Location`);
        if (hop >= MAX_REDIRECTS) throw new DiginfraError('INDEX_FETCH_FAILED', `index "${req.name}": more than ${MAX_REDIRECTS} redirects from ${req.url}`);
        url = new URL(location, url).toString();
        continue;
      }
      if (statusCode === 304) {
        await res.body.dump();
        if (!req.etag && !req.lastModified) throw new DiginfraError('INDEX_FETCH_FAILED', `index "${req.name}": ${url} answered 304 to an unconditional request`);
        return { status: 'unchanged' };
      }
      if (statusCode === 401 || statusCode === 403) {
        await res.body.dump();
        throw new DiginfraError('AUTH_REQUIRED', `index "${req.name}": ${url} answered ${statusText(statusCode)}${req.credentials ? ' to the stored credentials' : ''}`, {
          hint: authHint ?? `${req.credentials ? 'store the right credentials' : 'this index needs credentials'}: diginfractl index add ${req.name} ${req.url} --username USER --password-stdin --force`,
        });
      }
      if (statusCode === 404 || statusCode === 410) {
        await res.body.dump();
        throw new DiginfraError('NOT_FOUND', `index "${req.name}": ${url} answered ${statusText(statusCode)}`, { hint: 'check the index URL' });
      }
      if (statusCode < 200 || statusCode >= 300) {
        await res.body.dump();
        throw new DiginfraError('INDEX_FETCH_FAILED', `index "${req.name}": ${url} answered ${statusText(statusCode)}`, {
          hint: 'try again later; the previous cached copy, if any, stays in use',
        });
      }
      const contentType = header('content-type') ?? '';
      if (/^\s*(text\/html|application\/xhtml)/i.test(contentType)) {
        await res.body.dump();
        throw new DiginfraError('INDEX_INVALID', `index "${req.name}": ${url} returned an HTML page (content-type ${contentType.split(';')[0]}), not a YAML index`, {
          hint: 'check the URL: it should point at the raw index.yaml, not a web page or a login page',
        });
      }
      const declared = Number(header('content-length'));
      if (Number.isFinite(declared) && declared > max) {
        res.body.destroy();
        throw tooLarge(req, url);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > max) {
            res.body.destroy();
            throw tooLarge(req, url);
          }
          chunks.push(chunk as Buffer);
        }
      } catch (err) {
        if (err instanceof DiginfraError) throw err;
        throw new DiginfraError('NETWORK', `index "${req.name}": reading ${url} failed: ${networkMessage(err)}`, { cause: err });
      }
      const etag = header('etag');
      const lastModified = header('last-modified');
      return {
        status: 'fetched',
        text: Buffer.concat(chunks).toString('utf8'),
        ...(etag !== undefined && { etag }),
        ...(lastModified !== undefined && { lastModified }),
      };
    }
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

function readCa(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new DiginfraError('IO', `index "${name}": cannot read CA file ${path}: ${messageOf(err)}`, { cause: err, hint: 'fix registry.caFiles in the config' });
  }
}

function networkMessage(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const msg = messageOf(err);
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}
