/**
 * Bearer tokens by realm, service and scope, dropped shortly before they expire. One fetch then
 * serves every request of a pull or push.
 */
export interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Tokens are refreshed this long before the issuer says they expire, to absorb clock skew. */
const EXPIRY_MARGIN_MS = 10_000;
/** The spec's default when a token response has no `expires_in`. */
export const DEFAULT_TOKEN_LIFETIME_S = 60;

export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  static key(realm: string, service: string | undefined, scopes: string[]): string {
    return `${realm}|${service ?? ''}|${scopes.join(' ')}`;
  }

  get(key: string): string | undefined {
    const hit = this.#tokens.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt - EXPIRY_MARGIN_MS <= this.#now()) {
      this.#tokens.delete(key);
      return undefined;
    }
    return hit.token;
  }

  set(key: string, token: string, expiresInSeconds: number | undefined): void {
    const lifetime = expiresInSeconds && expiresInSeconds > 0 ? expiresInSeconds : DEFAULT_TOKEN_LIFETIME_S;
    this.#tokens.set(key, { token, expiresAt: this.#now() + lifetime * 1000 });
  }

  delete(key: string): void {
    this.#tokens.delete(key);
  }
}
