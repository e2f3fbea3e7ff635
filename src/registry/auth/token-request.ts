/**
 * Asks a Bearer challenge's realm for a token: the Docker token protocol (GET with Basic credentials,
 * or anonymous) or, for a docker identity token, the OAuth2 refresh-token grant (POST).
 * https://distribution.github.io/distribution/spec/auth/token/ and .../auth/oauth/
 */
import { DiginfraError } from '../../errors.js';
import { authError, parseJson, readErrorBody, readLimited } from '../errors.js';
import type { HttpRequest, Transport } from '../transport.js';
import type { Credential } from './session.js';

/** Largest token response we read. */
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** `Basic <base64(user:password)>` of a credential with a username. */
export function basicAuthorization(cred: Credential & { username: string }): string {
  return `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
}

export interface TokenGrant {
  realm: string;
  service: string | undefined;
  scopes: string[];
}

/** One token request to `grant.realm` for `registry`, with `cred` or anonymous. */
export async function fetchToken(transport: Transport, registry: string, grant: TokenGrant, cred: Credential | undefined): Promise<{ token: string; expiresIn?: number }> {
  const url = new URL(grant.realm);
  let req: HttpRequest;
  if (cred?.identityToken) {
    // OAuth2 refresh-token grant, as docker does for identity tokens.
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'diginfractl' });
    if (grant.service) form.set('service', grant.service);
    if (grant.scopes.length) form.set('scope', grant.scopes.join(' '));
    req = {
      method: 'POST',
      url: url.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: () => form.toString(),
    };
  } else {
    if (grant.service) url.searchParams.set('service', grant.service);
    for (const s of grant.scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (cred?.username) headers.authorization = basicAuthorization({ ...cred, username: cred.username });
    req = { method: 'GET', url: url.toString(), headers };
  }
  const res = await transport.send(registry, req);
  if (res.statusCode === 401 || res.statusCode === 403) {
    await res.body.dump();
    throw authError(registry, cred, `the token service ${url.host} refused ${cred ? 'the stored credentials' : 'anonymous access'}`);
  }
  if (res.statusCode !== 200) {
    const detail = await readErrorBody(res);
    throw new DiginfraError('REGISTRY_ERROR', `token service ${url.host} for ${registry} answered ${res.statusCode}${detail ? `: ${detail}` : ''}`);
  }
  const body = parseJson<{ token?: string; access_token?: string; expires_in?: number }>(await readLimited(res, MAX_TOKEN_RESPONSE), url.host, 'the token request');
  const token = body.access_token ?? body.token;
  if (!token) throw new DiginfraError('REGISTRY_ERROR', `token service ${url.host} returned no token`);
  return { token, ...(body.expires_in !== undefined && { expiresIn: body.expires_in }) };
}
