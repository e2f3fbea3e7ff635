/**
 * The auth handshake with registries, over one Transport: credentials looked up per host (and kept
 * briefly), the scheme learned from a 401's `WWW-Authenticate`, Basic or a Bearer token fetched from
 * the challenge's realm (cached per scope and credential), and the request sent again once with it.
 * https://distribution.github.io/distribution/spec/auth/token/
 */
import { createHash } from 'node:crypto';
import { DiginfraError, isDiginfraError } from '../../errors.js';
import { authError, readErrorBody } from '../errors.js';
import { header } from '../headers.js';
import type { HttpRequest, HttpResponse, Transport } from '../transport.js';
import { parseChallenge, type Challenge } from './challenge.js';
import { mergeScopes } from './scope.js';
import { TokenCache } from './token-cache.js';
import { basicAuthorization, fetchToken, type TokenGrant } from './token-request.js';

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

export interface CredentialSource {
  get(host: string): Promise<Credential | undefined>;
  /**
   * A number that changes when what the source reads has changed (a rotated Secret, a new login):
   * credentials looked up before are then looked up again. Absent: only the TTL and refusals do.
   */
  generation?(): number;
}

/** How long a looked-up credential is reused before the files and helpers are asked again. */
const CREDENTIAL_TTL_MS = 5 * 60_000;

export class AuthSession {
  readonly transport: Transport;
  readonly #credentials: CredentialSource | undefined;
  readonly #tokens = new TokenCache();
  /** The auth scheme each registry asked for, learned from its first 401. */
  readonly #challenges = new Map<string, Challenge>();
  readonly #credentialCache = new Map<string, { value: Promise<Credential | undefined>; until: number; generation: number }>();

  constructor(transport: Transport, credentials?: CredentialSource) {
    this.transport = transport;
    this.#credentials = credentials;
  }

  /** The absolute URL of an API `path` (`/v2/...`) of `registry`, its mirror's when it has one. */
  url(registry: string, path: string): string {
    return `${this.transport.baseUrl(registry)}${path}`;
  }

  /**
   * Sends a request with whatever auth the registry wants. The first request to a registry goes out
   * anonymous; a 401 teaches us the scheme, and the request is sent once more with credentials. When
   * the stored credentials are refused (a 401 or 403, or the token service's refusal), they may have
   * been rotated since they were read: every source is read again, once, and the request sent again
   * when that gives other credentials. A refused credential is not kept.
   */
  async send(registry: string, scopes: string[], req: HttpRequest, cred?: Credential): Promise<HttpResponse> {
    // Credentials the caller gave are its own to get right (`repo login`): nothing to read again.
    if (cred) return this.#send(registry, scopes, req, cred);
    let refused: HttpResponse | undefined;
    try {
      refused = await this.#send(registry, scopes, req, undefined);
      if (refused.statusCode !== 403 || !this.#credentialCache.has(registry)) return refused;
    } catch (err) {
      // Only a refusal of credentials we had: a lookup that failed (a helper, a token endpoint) left
      // nothing cached, and asking it again at once would fail the same way.
      if (!isDiginfraError(err, 'AUTH_REQUIRED') || !this.#credentialCache.has(registry)) throw err;
      if (!(await this.#rereadChanged(registry))) throw err;
      return this.#send(registry, scopes, req, undefined);
    }
    if (!(await this.#rereadChanged(registry))) return refused;
    await refused.body.dump();
    return this.#send(registry, scopes, req, undefined);
  }

  /**
   * After a refusal of the stored credentials of `registry`: drops them and reads every source again.
   * True when that gives other credentials (worth one more try); false leaves nothing cached.
   */
  async #rereadChanged(registry: string): Promise<boolean> {
    const used = await this.#credentialCache.get(registry)?.value.catch(() => undefined);
    this.#credentialCache.delete(registry);
    let fresh: Credential | undefined;
    try {
      fresh = await this.#credentialFor(registry);
    } catch {
      return false;
    }
    if (sameCredential(fresh, used)) {
      this.#credentialCache.delete(registry);
      return false;
    }
    return true;
  }

  /** send() for one credential: the caller's, or the stored one (undefined). */
  async #send(registry: string, scopes: string[], req: HttpRequest, cred: Credential | undefined): Promise<HttpResponse> {
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
      this.#tokens.delete(tokenKey(grantFor(challenge, scopes), credential));
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
    const url = this.url(registry, '/v2/');
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

  /**
   * Credentials per host, looked up once per session and kept briefly: a credential helper is a
   * process start, and a pull or a follow check makes many requests.
   */
  async #credentialFor(registry: string): Promise<Credential | undefined> {
    if (!this.#credentials) return undefined;
    const generation = this.#credentials.generation?.() ?? 0;
    const hit = this.#credentialCache.get(registry);
    if (hit && hit.until > Date.now() && hit.generation === generation) return hit.value;
    const value = this.#credentials.get(registry);
    const entry = { value, until: Date.now() + CREDENTIAL_TTL_MS, generation };
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
      return basicAuthorization({ ...credential, username: credential.username });
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.registryToken) return `Bearer ${credential.registryToken}`;
    if (!challenge.params.realm) throw new DiginfraError('REGISTRY_ERROR', `${registry} sent a Bearer challenge without a realm`);
    const grant = grantFor(challenge, scopes);
    const key = tokenKey(grant, credential);
    const cached = this.#tokens.get(key);
    if (cached) return `Bearer ${cached}`;
    const { token, expiresIn } = await fetchToken(this.transport, registry, grant, credential);
    this.#tokens.set(key, token, expiresIn);
    return `Bearer ${token}`;
  }
}

/** What a token for `scopes` under a Bearer `challenge` is asked for: ours and the challenge's scopes. */
function grantFor(challenge: Challenge, scopes: string[]): TokenGrant {
  return {
    realm: challenge.params.realm ?? '',
    service: challenge.params.service,
    scopes: mergeScopes([...scopes, ...(challenge.params.scope ? challenge.params.scope.split(' ') : [])]),
  };
}

/** Tokens are cached per grant and credential: a hash of the credential, so no secret is kept as a map key. */
function tokenKey(grant: TokenGrant, cred: Credential | undefined): string {
  return TokenCache.key(grant.realm, grant.service, grant.scopes) + credentialFingerprint(cred);
}

function credentialFingerprint(cred: Credential | undefined): string {
  if (!cred) return '|anonymous';
  return `|${createHash('sha256').update(`${cred.username ?? ''}\0${cred.password ?? ''}\0${cred.identityToken ?? ''}`).digest('hex').slice(0, 16)}`;
}

/** The same secrets (where they came from aside): reading the sources again changed nothing. */
function sameCredential(a: Credential | undefined, b: Credential | undefined): boolean {
  if (!a || !b) return a === b;
  return a.username === b.username && a.password === b.password && a.identityToken === b.identityToken && a.registryToken === b.registryToken;
}

function withAuth(req: HttpRequest, auth: string | undefined): HttpRequest {
  return auth ? { ...req, headers: { ...req.headers, authorization: auth } } : req;
}
