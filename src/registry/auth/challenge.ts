/**
 * Parses `WWW-Authenticate` headers (RFC 7235) as registries send them:
 * `Basic realm="Registry"` or `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull"`.
 * https://distribution.github.io/distribution/spec/auth/token/
 */
export interface Challenge {
  scheme: 'basic' | 'bearer' | 'other';
  params: Record<string, string>;
}

const PARAM_RE = /([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/y;

export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  const space = trimmed.search(/\s/);
  const scheme = (space < 0 ? trimmed : trimmed.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  let rest = space < 0 ? '' : trimmed.slice(space).trim();
  while (rest.length > 0) {
    PARAM_RE.lastIndex = 0;
    const m = PARAM_RE.exec(rest);
    if (!m) break;
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '');
    rest = rest.slice(m[0].length).replace(/^\s*,\s*/, '');
  }
  return { scheme: scheme === 'basic' || scheme === 'bearer' ? scheme : 'other', params };
}
