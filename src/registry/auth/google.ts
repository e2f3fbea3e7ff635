/**
 * Google application default credentials (ADC) for `registry.auth.gcp` (Artifact Registry, Container
 * Registry), as falcoctl gets them through golang.org/x/oauth2/google. The access token goes to the
 * registry as the password of the user `oauth2accesstoken`, as docker-credential-gcr hands it out.
 *
 * Where the credentials come from, in ADC's order:
 * 1. `GOOGLE_APPLICATION_CREDENTIALS`: a JSON key file. `service_account`: a JWT signed with its
 *    private key, exchanged at its `token_uri` (RFC 7523). `authorized_user` (what `gcloud auth
 *    application-default login` writes): its refresh token, exchanged at Google's token endpoint.
 * 2. gcloud's own file: `$CLOUDSDK_CONFIG/application_default_credentials.json`, default
 *    `~/.config/gcloud/`.
 * 3. The metadata server of the VM or GKE node, which serves Workload Identity too:
 *    `http://$GCE_METADATA_HOST` (default metadata.google.internal), header `Metadata-Flavor: Google`,
 *    never through a proxy.
 *
 * Tokens are cached until shortly before they expire, and one request serves concurrent callers. No
 * message holds a key, a refresh token or an access token.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DiginfraError, messageOf } from '../../errors.js';
import { hostOf, sendSmall } from '../transport.js';
import { RenewingToken } from './token-cache.js';

export const GOOGLE_REGISTRY_USER = 'oauth2accesstoken';
/** What a token may do: the registry needs cloud-platform (Artifact Registry has no narrower scope). */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** Reading an index object is all gs:// needs. */
export const STORAGE_READ_SCOPE = 'https://www.googleapis.com/auth/devstorage.read_only';
const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
const DEFAULT_METADATA_HOST = 'metadata.google.internal';
/** A token is renewed this long before it expires. */
const RENEW_MARGIN_MS = 60_000;

export interface GoogleOptions {
  /** OAuth scope of the tokens (default cloud-platform). */
  scope?: string;
  env?: NodeJS.ProcessEnv;
  userAgent?: string;
  now?: () => number;
}

interface KeyFile {
  type?: unknown;
  client_email?: unknown;
  private_key?: unknown;
  private_key_id?: unknown;
  token_uri?: unknown;
  client_id?: unknown;
  client_secret?: unknown;
  refresh_token?: unknown;
}

type Method = { kind: 'file'; path: string; key: KeyFile } | { kind: 'metadata'; host: string };

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/** Network errors that mean there is no metadata server at all. */
const NO_SERVER = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/;

/** No key file and no metadata server: this machine has no Google identity. */
export class NoGoogleCredentials extends DiginfraError {
  constructor(message: string, opts: { cause?: unknown; hint?: string }) {
    super('AUTH_REQUIRED', message, opts);
  }
}

export class GoogleTokenSource {
  readonly #env: NodeJS.ProcessEnv;
  readonly #options: GoogleOptions;
  readonly #now: () => number;
  readonly #token: RenewingToken;

  constructor(options: GoogleOptions = {}) {
    this.#options = options;
    this.#env = options.env ?? process.env;
    this.#now = options.now ?? Date.now;
    this.#token = new RenewingToken(RENEW_MARGIN_MS, this.#now);
  }

  /**
   * A token, or undefined when this machine has no Google credentials at all (no key file, no
   * metadata server): for what may also be read anonymously (a public bucket).
   */
  async tokenIfAny(what: string): Promise<string | undefined> {
    try {
      return await this.token(what);
    } catch (err) {
      if (err instanceof NoGoogleCredentials) return undefined;
      throw err;
    }
  }

  /** An access token valid for a while yet; `registry` only names what it is for in errors. */
  async token(registry: string): Promise<string> {
    return (await this.tokenWithRenewal(registry)).value;
  }

  /** The token and when it is renewed (epoch ms): a cache of it must not outlive that. */
  tokenWithRenewal(registry: string): Promise<{ value: string; renewAt: number }> {
    return this.#token.get(async () => {
      const method = await this.#method(registry);
      const reply = method.kind === 'metadata' ? await this.#fromMetadata(method.host, registry) : await this.#fromKeyFile(method.path, method.key, registry);
      return { value: reply.token, lifetimeS: reply.expiresIn };
    });
  }

  /** Which source ADC uses: the first key file that exists, else the metadata server. */
  async #method(registry: string): Promise<Method> {
    const explicit = this.#env.GOOGLE_APPLICATION_CREDENTIALS;
    if (explicit !== undefined && explicit !== '') {
      return { kind: 'file', path: explicit, key: await readKeyFile(explicit, registry, true) };
    }
    const gcloud = join(this.#env.CLOUDSDK_CONFIG || join(this.#env.HOME || homedir(), '.config', 'gcloud'), 'application_default_credentials.json');
    const key = await readKeyFile(gcloud, registry, false);
    if (key) return { kind: 'file', path: gcloud, key };
    return { kind: 'metadata', host: this.#env.GCE_METADATA_HOST || DEFAULT_METADATA_HOST };
  }

  async #fromKeyFile(path: string, key: KeyFile, registry: string): Promise<{ token: string; expiresIn: number }> {
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const missing = (field: string) =>
      new DiginfraError('AUTH_REQUIRED', `Google credentials file ${path} has no "${field}"`, { hint: 'download a new key file, or run `gcloud auth application-default login` again' });
    let form: URLSearchParams;
    let tokenUri: string;
    if (key.type === 'service_account') {
      const email = str(key.client_email) ?? '';
      const pem = str(key.private_key);
      if (!email) throw missing('client_email');
      if (!pem) throw missing('private_key');
      tokenUri = str(key.token_uri) ?? GOOGLE_TOKEN_URI;
      const iat = Math.floor(this.#now() / 1000);
      const header = { alg: 'RS256', typ: 'JWT', ...(str(key.private_key_id) && { kid: key.private_key_id }) };
      const claims = { iss: email, scope: this.#options.scope ?? CLOUD_PLATFORM_SCOPE, aud: tokenUri, iat, exp: iat + 3600 };
      const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
      let signature: Buffer;
      try {
        signature = sign('sha256', Buffer.from(signing), createPrivateKey(pem));
      } catch (err) {
        throw new DiginfraError('AUTH_REQUIRED', `the private key in Google credentials file ${path} cannot sign: ${messageOf(err)}`, { cause: err });
      }
      form = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${signing}.${b64url(signature)}` });
    } else if (key.type === 'authorized_user') {
      const id = str(key.client_id);
      const secret = str(key.client_secret);
      const refresh = str(key.refresh_token);
      if (!id) throw missing('client_id');
      if (!secret) throw missing('client_secret');
      if (!refresh) throw missing('refresh_token');
      tokenUri = str(key.token_uri) ?? GOOGLE_TOKEN_URI;
      form = new URLSearchParams({ grant_type: 'refresh_token', client_id: id, client_secret: secret, refresh_token: refresh });
    } else {
      throw new DiginfraError('AUTH_REQUIRED', `Google credentials file ${path} is of type ${JSON.stringify(key.type ?? null)}; diginfractl reads "service_account" and "authorized_user"`, {
        hint: `for ${registry}, use a service account key, or the metadata server (GKE Workload Identity)`,
      });
    }
    const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const reply = await this.#send({ method: 'POST', url: tokenUri, headers, body: form.toString() }, false);
    if (reply.status !== 200) {
      const detail = errorDetail(reply.body);
      throw new DiginfraError('AUTH_REQUIRED', `Google token endpoint ${hostOf(tokenUri)} refused the credentials of ${path} for ${registry} (HTTP ${reply.status})${detail}`, {
        hint: 'check that the key is not revoked and that the account exists',
      });
    }
    return parseToken(reply.body, `Google token endpoint ${hostOf(tokenUri)}`, registry);
  }

  async #fromMetadata(host: string, registry: string): Promise<{ token: string; expiresIn: number }> {
    const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/token?scopes=${encodeURIComponent(this.#options.scope ?? CLOUD_PLATFORM_SCOPE)}`;
    let reply: { status: number; body: string };
    try {
      reply = await this.#send({ method: 'GET', url, headers: { 'metadata-flavor': 'Google', accept: 'application/json' } }, true);
    } catch (err) {
      const hint = 'on GKE, give the pod a Kubernetes service account bound to a Google one (Workload Identity); elsewhere set GOOGLE_APPLICATION_CREDENTIALS to a service account key file';
      const what = `no Google credentials for ${registry}: GOOGLE_APPLICATION_CREDENTIALS is not set, gcloud has no application default credentials, and the metadata server ${host}`;
      // No such host, or nothing listening: not on Google Cloud. A timeout may be a server still starting (GKE's): an error.
      if (NO_SERVER.test(messageOf(err))) throw new NoGoogleCredentials(`${what} does not exist here (${messageOf(err)})`, { cause: err, hint });
      throw new DiginfraError('AUTH_REQUIRED', `${what} did not answer (${messageOf(err)})`, { cause: err, hint });
    }
    if (reply.status !== 200) {
      throw new DiginfraError('AUTH_REQUIRED', `the metadata server ${host} gave no token for ${registry} (HTTP ${reply.status})${errorDetail(reply.body)}`, {
        hint: 'check that the node or the pod (Workload Identity) has a Google service account',
      });
    }
    return parseToken(reply.body, `the metadata server ${host}`, registry);
  }

  /** One request; the metadata server is never reached through a proxy. */
  #send(req: { method: 'GET' | 'POST'; url: string; headers: Record<string, string>; body?: string }, direct: boolean): Promise<{ status: number; body: string }> {
    return sendSmall(`google:${hostOf(req.url)}`, req, {
      hostSettings: () => ({ insecureSkipTlsVerify: false }),
      retry: { attempts: 2, maxRetryAfterMs: 5_000 },
      readTimeoutMs: direct ? 5_000 : 30_000,
      ...(direct && { connectTimeoutMs: 3_000 }),
      ...(this.#options.userAgent !== undefined && { userAgent: this.#options.userAgent }),
      env: direct ? {} : this.#env,
    });
  }
}

async function readKeyFile(path: string, registry: string, required: true): Promise<KeyFile>;
async function readKeyFile(path: string, registry: string, required: false): Promise<KeyFile | undefined>;
async function readKeyFile(path: string, registry: string, required: boolean): Promise<KeyFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DiginfraError('AUTH_REQUIRED', `cannot read Google credentials file ${path}${required ? ' (GOOGLE_APPLICATION_CREDENTIALS)' : ''} for ${registry}: ${messageOf(err)}`, { cause: err });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as KeyFile;
  } catch {
    // the message below
  }
  throw new DiginfraError('AUTH_REQUIRED', `Google credentials file ${path} is not a JSON object`, { hint: 'download a new key file' });
}


/** ` (invalid_grant: ...)` from an OAuth error reply, printable and short; tokens never appear in errors. */
function errorDetail(body: string): string {
  try {
    const o = JSON.parse(body) as { error?: unknown; error_description?: unknown };
    const parts = [o.error, o.error_description].filter((x): x is string => typeof x === 'string').map((x) => x.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 200));
    return parts.length ? ` (${parts.join(': ')})` : '';
  } catch {
    return '';
  }
}

function parseToken(body: string, what: string, registry: string): { token: string; expiresIn: number } {
  let o: { access_token?: unknown; expires_in?: unknown } | undefined;
  try {
    o = JSON.parse(body) as typeof o;
  } catch {
    o = undefined;
  }
  const token = o?.access_token;
  if (typeof token !== 'string' || token === '') throw new DiginfraError('REGISTRY_ERROR', `${what} sent no access_token for ${registry}`);
  const e = o?.expires_in;
  const expiresIn = typeof e === 'number' && Number.isFinite(e) && e > 0 ? e : 300;
  return { token, expiresIn };
}

/** One source per scope and process: ADC is the process's own identity, and a follower keeps its token. */
const shared = new Map<string, GoogleTokenSource>();
export function sharedGoogleSource(options: GoogleOptions = {}): GoogleTokenSource {
  const scope = options.scope ?? CLOUD_PLATFORM_SCOPE;
  let source = shared.get(scope);
  if (!source) shared.set(scope, (source = new GoogleTokenSource({ ...options, scope })));
  return source;
}
