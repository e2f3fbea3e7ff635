/** Secrets never leave the process in clear: `config show` and logs get masked copies. */
import type { DiginfraConfig } from './types.js';

export const MASK = '********';

/** A copy with passwords and client secrets replaced, and credentials in URLs hidden. */
export function maskConfig(config: DiginfraConfig): DiginfraConfig {
  const out = structuredClone(config);
  if (out.registry.auth) {
    out.registry.auth.basic = out.registry.auth.basic.map((b) => ({ ...b, password: MASK }));
    out.registry.auth.oauth = out.registry.auth.oauth.map((o) => ({ ...o, clientSecret: MASK }));
  }
  out.indexes = out.indexes.map((i) => ({ ...i, url: maskUrl(i.url) }));
  if (out.follow.engineVersionsUrl) out.follow.engineVersionsUrl = maskUrl(out.follow.engineVersionsUrl);
  return out;
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
