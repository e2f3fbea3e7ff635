/**
 * OAuth2 client-credentials grant (RFC 6749 §4.4) for `registry.auth.oauth`: the access token it
 * yields is sent to the registry as its bearer token directly, as ORAS's `AccessToken` and docker's
 * `registrytoken` are (falcoctl does the same with its oauth2 HTTP client).
 *
 * The request is `POST tokenURL` with `grant_type=client_credentials` (and `scope`, the scopes joined
 * by spaces, when some are configured), the client authenticated with HTTP Basic (§2.3.1: id and secret
 * form-urlencoded first). A server that refuses Basic with 400/401 is asked once more with
 * `client_id`/`client_secret` as form fields, as golang.org/x/oauth2's auto-detection does; the style
 * that worked is remembered.
 *
 * Tokens are cached until shortly before `expires_in` runs out (5 minutes when the server gives no
 * lifetime); concurrent callers share one request. No message ever contains the client secret or a
 * token: errors name the token URL's host and the registry.
 */
import { createHash } from 'node:crypto';
import { DiginfraError } from '../../errors.js';
import { hostOf, sendSmall } from '../transport.js';
import { RenewingToken } from './token-cache.js';

export interface OAuthClientConfig {
  clientID: string;
  clientSecret: string;
  tokenURL: string;
  scopes?: string[];
}

export interface OAuthTokenRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface OAuthTokenReply {
  status: number;
  contentType: string;
  body: string;
}

export interface OAuthOptions {
  /** PEM bundle trusted for the token URL (besides the system CAs). TLS is always verified. */
  caFile?: string;
  /** Environment for proxy variables; default process.env. */
  env?: NodeJS.ProcessEnv;
  userAgent?: string;
  /** Clock, for tests. */
  now?: () => number;
  /** Sends one token request; default: undici through the registry transport (proxies, CA, timeouts, retries). */
  send?: (req: OAuthTokenRequest) => Promise<OAuthTokenReply>;
}

/** Lifetime assumed when the server sends no `expires_in` (RFC 6749 makes it optional). */
export const DEFAULT_OAUTH_LIFETIME_S = 300;
/** A token is renewed this long before it expires (at most a tenth of its lifetime). */
const MAX_EXPIRY_MARGIN_MS = 30_000;

type AuthStyle = 'basic' | 'form';

/** `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 Appendix B wants. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}


/** A short, printable excerpt of server text with every occurrence of `secret` masked. */
function sanitize(text: string, secret: string): string {
  let out = text.replace(/[^\x20-\x7e]+/g, ' ').trim();
  if (secret !== '') out = out.split(secret).join('***');
  return out.length > 200 ? `${out.slice(0, 200)}...` : out;
}

interface TokenBody {
  access_token?: unknown;
  expires_in?: unknown;
  error?: unknown;
  error_description?: unknown;
}

function parseBody(reply: OAuthTokenReply): TokenBody | undefined {
  const type = reply.contentType.toLowerCase();
  if (type.includes('application/x-www-form-urlencoded') || type.includes('text/plain')) {
    const form = new URLSearchParams(reply.body);
    if (form.has('access_token') || form.has('error')) return Object.fromEntries(form) as TokenBody;
  }
  try {
    const parsed: unknown = JSON.parse(reply.body);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as TokenBody) : undefined;
  } catch {
    return undefined;
  }
}

/** One OAuth client of one registry: hands out a valid access token, fetching it when needed. */
export class OAuthTokenSource {
  readonly #config: OAuthClientConfig;
  readonly #registry: string;
  readonly #options: OAuthOptions;
  readonly #now: () => number;
  readonly #token: RenewingToken;
  #style: AuthStyle | undefined;
  #grants = 0;

  constructor(config: OAuthClientConfig, registry: string, options: OAuthOptions = {}) {
    this.#config = config;
    this.#registry = registry;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#token = new RenewingToken(MAX_EXPIRY_MARGIN_MS, this.#now);
  }

  /** How many grants this source has received (tests, diagnostics). */
  get grants(): number {
    return this.#grants;
  }

  /** A token valid for a while yet: the cached one, or a fresh one. */
  async token(): Promise<string> {
    return (await this.tokenWithRenewal()).value;
  }

  /** The token and when it is renewed (epoch ms): a cache of it must not outlive that. */
  tokenWithRenewal(): Promise<{ value: string; renewAt: number }> {
    return this.#token.get(() => this.#fetch());
  }

  /** Forget the cached token, so the next call asks for a new one. */
  invalidate(): void {
    this.#token.invalidate();
  }

  async #fetch(): Promise<{ value: string; lifetimeS: number }> {
    const styles: AuthStyle[] = this.#style ? [this.#style] : ['basic', 'form'];
    let reply: OAuthTokenReply | undefined;
    let used: AuthStyle = styles[0]!;
    for (const style of styles) {
      used = style;
      reply = await this.#post(style);
      // Basic refused: maybe the server only reads the client from the form (client_secret_post).
      if (!(style === 'basic' && styles.length > 1 && (reply.status === 400 || reply.status === 401))) break;
    }
    const accepted = this.#accept(reply!);
    this.#style = used;
    this.#grants++;
    return accepted;
  }

  #post(style: AuthStyle): Promise<OAuthTokenReply> {
    const { clientID, clientSecret, tokenURL, scopes } = this.#config;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scopes && scopes.length > 0) form.set('scope', scopes.join(' '));
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (style === 'basic') {
      headers.authorization = `Basic ${Buffer.from(`${formEncode(clientID)}:${formEncode(clientSecret)}`).toString('base64')}`;
    } else {
      form.set('client_id', clientID);
      form.set('client_secret', clientSecret);
    }
    const send = this.#options.send ?? ((req: OAuthTokenRequest) => this.#sendHttp(req));
    return send({ url: tokenURL, headers, body: form.toString() });
  }

  /** The token and its lifetime from a reply, or an error that names the token URL's host. */
  #accept(reply: OAuthTokenReply): { value: string; lifetimeS: number } {
    const host = hostOf(this.#config.tokenURL, 'the token URL');
    const registry = this.#registry;
    const body = parseBody(reply);
    if (reply.status !== 200) {
      const code = typeof body?.error === 'string' ? sanitize(body.error, this.#config.clientSecret) : '';
      const description = typeof body?.error_description === 'string' ? sanitize(body.error_description, this.#config.clientSecret) : '';
      const detail = [code, description].filter(Boolean).join(': ');
      const suffix = detail ? ` (${detail})` : '';
      if (reply.status === 400 || reply.status === 401 || reply.status === 403) {
        throw new DiginfraError('AUTH_REQUIRED', `OAuth token endpoint ${host} refused the client credentials for ${registry} (HTTP ${reply.status})${suffix}`, {
          hint: `check clientID, clientSecret and scopes of the registry.auth.oauth entry for ${registry}`,
        });
      }
      throw new DiginfraError('REGISTRY_ERROR', `OAuth token endpoint ${host} answered ${reply.status} when asked for a token for ${registry}${suffix}`, {
        hint: `check tokenURL of the registry.auth.oauth entry for ${registry}`,
      });
    }
    const token = body?.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new DiginfraError('REGISTRY_ERROR', `OAuth token endpoint ${host} sent no access_token for ${registry}`, {
        hint: `is tokenURL of the registry.auth.oauth entry for ${registry} an OAuth2 token endpoint?`,
      });
    }
    const raw = body?.expires_in;
    const seconds = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : undefined;
    return { value: token, lifetimeS: seconds !== undefined && Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_OAUTH_LIFETIME_S };
  }

  /** The default sender: one POST through a short-lived transport (closed after the reply). */
  async #sendHttp(req: OAuthTokenRequest): Promise<OAuthTokenReply> {
    const host = hostOf(req.url, 'the token URL');
    const caFile = this.#options.caFile;
    try {
      return await sendSmall(
        `oauth:${host}`,
        { method: 'POST', url: req.url, headers: req.headers, body: req.body },
        {
          hostSettings: () => ({ insecureSkipTlsVerify: false, ...(caFile !== undefined && { caFile }) }),
          retry: { attempts: 2, maxRetryAfterMs: 5_000 },
          readTimeoutMs: 30_000,
          ...(this.#options.userAgent !== undefined && { userAgent: this.#options.userAgent }),
          ...(this.#options.env !== undefined && { env: this.#options.env }),
        },
      );
    } catch (err) {
      if (err instanceof DiginfraError) {
        throw new DiginfraError(err.code, `cannot get an OAuth token for ${this.#registry}: ${err.message}`, {
          cause: err,
          ...(err.hint !== undefined && { hint: err.hint }),
        });
      }
      throw err;
    }
  }
}

/**
 * Sources shared by every client of this process with the same OAuth client and trust settings, so a
 * long-running follower that rebuilds its registry client keeps its token.
 */
const shared = new Map<string, OAuthTokenSource>();

export function sharedOAuthSource(config: OAuthClientConfig, registry: string, options: Omit<OAuthOptions, 'now' | 'send'> = {}): OAuthTokenSource {
  const key = createHash('sha256')
    .update([config.tokenURL, config.clientID, config.clientSecret, (config.scopes ?? []).join(' '), options.caFile ?? '', registry].join('\0'))
    .digest('hex');
  let source = shared.get(key);
  if (!source) {
    source = new OAuthTokenSource(config, registry, options);
    shared.set(key, source);
  }
  return source;
}
