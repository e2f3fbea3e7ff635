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

/**
 * One short-lived access token (OAuth client credentials, Google's): reused until its renewal time,
 * a tenth of its lifetime (at most `marginMs`) before it expires; one fetch serves concurrent callers,
 * and a failed fetch is not remembered.
 */
export class RenewingToken {
  readonly #now: () => number;
  readonly #marginMs: number;
  #token: { value: string; renewAt: number } | undefined;
  #inflight: Promise<{ value: string; renewAt: number }> | undefined;

  constructor(marginMs: number, now: () => number = Date.now) {
    this.#marginMs = marginMs;
    this.#now = now;
  }

  get(fetch: () => Promise<{ value: string; lifetimeS: number }>): Promise<{ value: string; renewAt: number }> {
    if (this.#token && this.#now() < this.#token.renewAt) return Promise.resolve(this.#token);
    this.#inflight ??= (async () => {
      const started = this.#now();
      const { value, lifetimeS } = await fetch();
      const lifetimeMs = lifetimeS * 1000;
      this.#token = { value, renewAt: started + lifetimeMs - Math.min(this.#marginMs, lifetimeMs / 10) };
      return this.#token;
    })().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  invalidate(): void {
    this.#token = undefined;
  }
}
