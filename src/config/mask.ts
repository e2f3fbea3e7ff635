/** Secrets never leave the process in clear: `config show` and logs get masked copies. */
import type { DiginfraConfig } from './types.js';
import { closest } from './suggest.js';
import { KEYS } from './keys.js';

export const MASK = '********';

/** A copy with passwords and client secrets replaced, and the passwords of URLs anywhere in it hidden. */
export function maskConfig(config: DiginfraConfig): DiginfraConfig {
  const out = structuredClone(config);
  if (out.registry.auth) {
    out.registry.auth.basic = out.registry.auth.basic.map((b) => ({ ...b, password: MASK }));
    out.registry.auth.oauth = out.registry.auth.oauth.map((o) => ({ ...o, clientSecret: MASK }));
  }
  out.indexes = out.indexes.map((i) => ({ ...i, url: maskUrl(i.url) }));
  if (out.follow.engineVersionsUrl) out.follow.engineVersionsUrl = maskUrl(out.follow.engineVersionsUrl);
  // Any other string (a validation command, a path) with a URL's password in it.
  return maskStrings(out) as DiginfraConfig;
}

function maskStrings(v: unknown): unknown {
  if (typeof v === 'string') return maskUrlsInText(v);
  if (Array.isArray(v)) return v.map(maskStrings);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskStrings(x)]));
  return v;
}

/** `https://user:pw@host/x` -> `https://user:********@host/x`; anything else unchanged. */
export function maskUrl(text: string): string {
  try {
    const url = new URL(text);
    if (!url.password) return text;
    url.password = MASK;
    return url.toString();
  } catch {
    return text;
  }
}

/** `scheme://user:password@` in any text: the password part. */
const URL_PASSWORD_RE = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:"']*):([^\s/?#@"']*)@/gi;

/** `... "https://user:pw@host/x" ...` -> `... "https://user:********@host/x" ...`, in any text (messages). */
export function maskUrlsInText(text: string): string {
  return text.replace(URL_PASSWORD_RE, (_all, before: string) => `${before}:${MASK}@`);
}

/** Words that name a secret, wherever they appear in a key (or a comment). */
const SECRET_WORD_RE = /pass|pwd|secret|token|credential|api_?key|private_?key/i;
/** Secrets' names a typo away (`pasword`, `secert`). */
const SECRET_NAMES = ['password', 'passwd', 'secret', 'clientsecret', 'token'];

/** True for a key that may hold a secret, misspelt or not: `password`, `Password`, `pasword`, `client_secret`. */
export function looksSecret(key: string): boolean {
  return SECRET_WORD_RE.test(key) || closest(key.replace(/[^a-z0-9]/gi, ''), SECRET_NAMES) !== undefined;
}

/** The config's own keys that hold secrets (`registry.auth.basic`, ...), split into parts. */
const SECRET_PATHS = KEYS.filter((k) => k.secret).map((k) => k.path.split('.'));

/**
 * True when a config's text, or the value parsed from it, may hold a secret: one of the config's
 * secret keys set to anything (even of the wrong type), a key that looks like a secret's at any
 * depth, a secret's name anywhere in the text (a comment), or a URL with a password. Such a config
 * is never copied anywhere, e.g. to the parse cache.
 */
export function mayHoldSecrets(text: string, value: unknown): boolean {
  return SECRET_WORD_RE.test(text) || maskUrlsInText(text) !== text || hasSecretKey(value) || SECRET_PATHS.some((parts) => valueAt(value, parts) != null);
}

function valueAt(v: unknown, parts: string[]): unknown {
  let at = v;
  for (const part of parts) {
    if (typeof at !== 'object' || at === null || Array.isArray(at)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

function hasSecretKey(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(hasSecretKey);
  if (typeof v === 'object' && v !== null) return Object.entries(v).some(([k, x]) => looksSecret(k) || hasSecretKey(x));
  return false;
}
