/**
 * registry.auth.oauth: the client-credentials grant (request shape, caching with a fake clock, errors
 * without secrets), its wiring into the client's Bearer handshake, and docker's `registrytoken`.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isDiginfraError } from '../../src/errors.js';
import { CredentialStore } from '../../src/registry/auth/credentials.js';
import { DEFAULT_OAUTH_LIFETIME_S, OAuthTokenSource, type OAuthTokenReply, type OAuthTokenRequest } from '../../src/registry/auth/oauth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { configCredentials, credentialsFor } from '../../src/registry/factory.js';
import { defaultConfig } from '../../src/config/types.js';
import { errorOf } from '../helpers/errors.js';

const SECRET = 'sup3r-s3cret-value';
const CONFIG = { clientID: 'my client', clientSecret: SECRET, tokenURL: 'https://auth.example.com/oauth2/token', scopes: ['read:a', 'write:b'] };

function json(status: number, body: unknown): OAuthTokenReply {
  return { status, contentType: 'application/json', body: JSON.stringify(body) };
}

/** A fake token endpoint: records requests, answers from `answer`. */
function fakeSend(answer: (req: OAuthTokenRequest, n: number) => OAuthTokenReply | Promise<OAuthTokenReply>) {
  const requests: OAuthTokenRequest[] = [];
  return {
    requests,
    send: async (req: OAuthTokenRequest) => {
      requests.push(req);
      return answer(req, requests.length);
    },
  };
}

describe('OAuthTokenSource', () => {
  it('POSTs a client-credentials grant with HTTP Basic client auth and space-joined scopes', async () => {
    const fake = fakeSend(() => json(200, { access_token: 'tok-1', token_type: 'Bearer', expires_in: 3600 }));
    const source = new OAuthTokenSource(CONFIG, 'registry.example.com', { send: fake.send });
    expect(await source.token()).toBe('tok-1');
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0]!;
    expect(req.url).toBe(CONFIG.tokenURL);
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
    expect(Buffer.from(req.headers.authorization!.replace(/^Basic /, ''), 'base64').toString()).toBe(`my+client:${SECRET}`);
    const form = new URLSearchParams(req.body);
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'client_credentials', scope: 'read:a write:b' });
  });

  it('leaves scope out when none is configured', async () => {
    const fake = fakeSend(() => json(200, { access_token: 't', expires_in: 60 }));
    await new OAuthTokenSource({ ...CONFIG, scopes: [] }, 'r', { send: fake.send }).token();
    expect(new URLSearchParams(fake.requests[0]!.body).has('scope')).toBe(false);
  });

  it('caches the token until shortly before expires_in, then fetches a new one', async () => {
    let now = 1_000_000;
    const fake = fakeSend((_req, n) => json(200, { access_token: `tok-${n}`, expires_in: 300 }));
    const source = new OAuthTokenSource(CONFIG, 'r', { send: fake.send, now: () => now });
    expect(await source.token()).toBe('tok-1');
    now += 200_000;
    expect(await source.token()).toBe('tok-1');
    now += 65_000; // 265 s: still more than the 30 s margin before expiry
    expect(await source.token()).toBe('tok-1');
    expect(fake.requests).toHaveLength(1);
    now += 10_000; // 275 s: inside the margin
    expect(await source.token()).toBe('tok-2');
    expect(await source.token()).toBe('tok-2');
    expect(fake.requests).toHaveLength(2);
    expect(source.grants).toBe(2);
  });

  it('uses a tenth of a short lifetime as the margin, and a default lifetime when none is given', async () => {
    let now = 0;
    const short = fakeSend((_req, n) => json(200, { access_token: `s-${n}`, expires_in: '20' }));
    const a = new OAuthTokenSource(CONFIG, 'r', { send: short.send, now: () => now });
    expect(await a.token()).toBe('s-1');
    now = 17_000;
    expect(await a.token()).toBe('s-1');
    now = 18_500;
    expect(await a.token()).toBe('s-2');

    now = 0;
    const none = fakeSend((_req, n) => json(200, { access_token: `d-${n}` }));
    const b = new OAuthTokenSource(CONFIG, 'r', { send: none.send, now: () => now });
    expect(await b.token()).toBe('d-1');
    now = DEFAULT_OAUTH_LIFETIME_S * 1000 - 31_000;
    expect(await b.token()).toBe('d-1');
    now = DEFAULT_OAUTH_LIFETIME_S * 1000;
    expect(await b.token()).toBe('d-2');
  });

  it('shares one request between concurrent callers, and forgets a failure', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fake = fakeSend(async (_req, n) => {
      await gate;
      return n === 1 ? json(503, {}) : json(200, { access_token: `tok-${n}`, expires_in: 60 });
    });
    const source = new OAuthTokenSource(CONFIG, 'r', { send: fake.send });
    const all = Promise.allSettled([source.token(), source.token(), source.token()]);
    release();
    const results = await all;
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(fake.requests).toHaveLength(1);
    expect(await Promise.all([source.token(), source.token()])).toEqual(['tok-2', 'tok-2']);
    expect(fake.requests).toHaveLength(2);
  });

  it('falls back to form fields when the server refuses Basic, and remembers that', async () => {
    let now = 0;
    const fake = fakeSend((req, n) =>
      req.headers.authorization ? json(401, { error: 'invalid_client' }) : json(200, { access_token: `tok-${n}`, expires_in: 100 }),
    );
    const source = new OAuthTokenSource(CONFIG, 'r', { send: fake.send, now: () => now });
    expect(await source.token()).toBe('tok-2');
    const form = new URLSearchParams(fake.requests[1]!.body);
    expect(form.get('client_id')).toBe('my client');
    expect(form.get('client_secret')).toBe(SECRET);
    expect(form.get('grant_type')).toBe('client_credentials');
    now = 200_000;
    expect(await source.token()).toBe('tok-3');
    expect(fake.requests).toHaveLength(3); // straight to the form style
  });

  it('reports refused client credentials naming the token host and the registry, never the secret', async () => {
    const fake = fakeSend(() => json(401, { error: 'invalid_client', error_description: `client secret ${SECRET} is wrong` }));
    const err = await errorOf(new OAuthTokenSource(CONFIG, 'registry.example.com', { send: fake.send }).token());
    expect(isDiginfraError(err, 'AUTH_REQUIRED')).toBe(true);
    expect(err.message).toContain('OAuth token endpoint auth.example.com refused the client credentials for registry.example.com');
    expect(err.message).toContain('invalid_client');
    expect(`${err.message} ${(err as { hint?: string }).hint}`).not.toContain(SECRET);
    expect((err as { hint?: string }).hint).toContain('registry.auth.oauth');
    expect(fake.requests).toHaveLength(2); // Basic, then form fields
  });

  it('reports a server error and a reply without access_token', async () => {
    const e500 = await errorOf(new OAuthTokenSource(CONFIG, 'r', { send: fakeSend(() => json(500, {})).send }).token());
    expect(isDiginfraError(e500, 'REGISTRY_ERROR')).toBe(true);
    expect(e500.message).toContain('OAuth token endpoint auth.example.com answered 500');
    const empty = await errorOf(new OAuthTokenSource(CONFIG, 'r', { send: fakeSend(() => ({ status: 200, contentType: 'text/html', body: '<html>' })).send }).token());
    expect(isDiginfraError(empty, 'REGISTRY_ERROR')).toBe(true);
    expect(empty.message).toContain('sent no access_token');
  });

  it('reads a form-encoded reply', async () => {
    const fake = fakeSend(() => ({ status: 200, contentType: 'application/x-www-form-urlencoded', body: 'access_token=formtok&expires_in=60' }));
    expect(await new OAuthTokenSource(CONFIG, 'r', { send: fake.send }).token()).toBe('formtok');
  });
});

describe('OAuthTokenSource over HTTP', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function listen(handler: (req: IncomingMessage, body: string) => { status: number; body: unknown }): Promise<string> {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        const out = handler(req, body);
        res.writeHead(out.status, { 'content-type': 'application/json' }).end(JSON.stringify(out.body));
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/token`;
  }

  it('POSTs through undici and reads the token', async () => {
    const seen: { method?: string; auth?: string; body?: string }[] = [];
    const url = await listen((req, body) => {
      seen.push({ method: req.method, auth: req.headers.authorization, body });
      return { status: 200, body: { access_token: 'http-token', expires_in: 60 } };
    });
    const source = new OAuthTokenSource({ clientID: 'id', clientSecret: 'sec', tokenURL: url }, 'r', { env: {} });
    expect(await source.token()).toBe('http-token');
    expect(seen).toEqual([{ method: 'POST', auth: `Basic ${Buffer.from('id:sec').toString('base64')}`, body: 'grant_type=client_credentials' }]);
  });

  it('names the token host when it cannot be reached', async () => {
    const url = await listen(() => ({ status: 200, body: {} }));
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const err = await errorOf(new OAuthTokenSource({ clientID: 'id', clientSecret: SECRET, tokenURL: url }, 'reg.example', { env: {} }).token());
    expect(isDiginfraError(err, 'NETWORK')).toBe(true);
    expect(err.message).toContain('cannot get an OAuth token for reg.example');
    expect(err.message).toContain(new URL(url).host);
    expect(err.message).not.toContain(SECRET);
  });
});

describe('config credentials', () => {
  it('prefers registry.auth.oauth, then registry.auth.basic, then the credential files; hosts compare loosely', async () => {
    const registry = {
      ...defaultConfig().registry,
      mirrors: { 'ghcr.io': 'mirror.local:5000' },
      auth: {
        basic: [
          { registry: 'Basic.Example:5000', user: 'u', password: 'p' },
          { registry: 'both.example', user: 'bu', password: 'bp' },
          { registry: 'mirror.local:5000', user: 'mu', password: 'mp' },
        ],
        // Port 1 on loopback: refused at once, so the grant fails without leaving the machine.
        oauth: [{ registry: 'both.example', clientID: 'id', clientSecret: 's', tokenURL: 'http://127.0.0.1:1/token' }],
        gcp: [],
      },
    };
    const store = { get: async (host: string) => (host === 'file.example' || host === 'basic.example:5000' ? { username: 'file', password: 'f' } : undefined) };
    const creds = credentialsFor(registry, store, { env: {} });
    expect(await creds.get('basic.example:5000')).toEqual({ username: 'u', password: 'p', origin: 'registry.auth.basic in the config file' });
    expect(await creds.get('file.example')).toEqual({ username: 'file', password: 'f' });
    expect(await creds.get('ghcr.io')).toEqual({ username: 'mu', password: 'mp', origin: 'registry.auth.basic in the config file' });
    expect(await creds.get('none.example')).toBeUndefined();
    // The oauth entry wins over the basic one for the same host (its grant is not reachable here).
    await expect(configCredentials(registry, { env: {} }).get('both.example')).rejects.toThrow(/cannot get an OAuth token for both\.example: cannot reach 127\.0\.0\.1:1/);
  });
});

describe('docker config.json registrytoken', () => {
  it('is read as a registry bearer token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regtoken-'));
    await mkdir(join(dir, 'docker'));
    await writeFile(
      join(dir, 'docker', 'config.json'),
      JSON.stringify({
        auths: {
          'a.example': { registrytoken: 'bearer-a' },
          'b.example': { auth: Buffer.from('u:p').toString('base64'), registrytoken: 'bearer-b' },
        },
      }),
    );
    const store = new CredentialStore({ configDir: join(dir, 'own'), dockerConfigDir: join(dir, 'docker'), env: { PATH: '' } });
    expect(await store.get('a.example')).toEqual({ registryToken: 'bearer-a' });
    expect(await store.get('b.example')).toEqual({ username: 'u', password: 'p', registryToken: 'bearer-b' });
  });
});

describe('RegistryClient with a registry token', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  /** A registry stub with a Bearer challenge whose realm must never be called. */
  async function bearerRegistry(accept: string): Promise<{ host: string; realmCalls: () => number; auths: string[] }> {
    let realmCalls = 0;
    const auths: string[] = [];
    server = createServer((req, res) => {
      if (req.url?.startsWith('/token')) {
        realmCalls++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'realm-token' }));
        return;
      }
      const auth = req.headers.authorization ?? '';
      auths.push(auth);
      if (auth !== `Bearer ${accept}`) {
        const { port } = server!.address() as AddressInfo;
        res
          .writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="stub",scope="repository:a/b:pull"`, 'content-type': 'application/json' })
          .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { host: `127.0.0.1:${(server!.address() as AddressInfo).port}`, realmCalls: () => realmCalls, auths };
  }

  it('sends the token as is, without asking the realm', async () => {
    const stub = await bearerRegistry('good-token');
    const client = new RegistryClient({ hostSettings: () => ({ plainHttp: true }), credentials: { get: async () => ({ registryToken: 'good-token' }) }, env: {} });
    try {
      await client.ping(stub.host);
      await client.ping(stub.host);
    } finally {
      await client.close();
    }
    expect(stub.realmCalls()).toBe(0);
    expect(stub.auths).toEqual(['', 'Bearer good-token', 'Bearer good-token']);
  });

  it('does not reuse a cached short-lived token past its renewal time (expiresAt), though credentials are cached 5 minutes', async () => {
    const stub = await bearerRegistry('token-2');
    const handed: string[] = [];
    // The source renews its token at expiresAt: token-1 until then, token-2 after.
    const renewal = Date.now() + 100;
    const client = new RegistryClient({
      hostSettings: () => ({ plainHttp: true }),
      credentials: {
        get: async () => {
          const value = Date.now() < renewal ? 'token-1' : 'token-2';
          handed.push(value);
          return { registryToken: value, expiresAt: Date.now() < renewal ? renewal : Date.now() + 60_000 };
        },
      },
      env: {},
    });
    try {
      await expect(client.ping(stub.host)).rejects.toThrow(/refused the OAuth access token/);
      await new Promise((r) => setTimeout(r, 150));
      // Past expiresAt: asked again, and the new token is taken.
      await client.ping(stub.host);
    } finally {
      await client.close();
    }
    // The refused token-1 is read again once (a rotated credential would show there) before the failure.
    expect(handed).toEqual(['token-1', 'token-1', 'token-2']);
  });

  it('says the OAuth token was refused when the registry answers 401 to it', async () => {
    const stub = await bearerRegistry('good-token');
    const client = new RegistryClient({ hostSettings: () => ({ plainHttp: true }), credentials: { get: async () => ({ registryToken: 'stale-token' }) }, env: {} });
    try {
      const err = await errorOf(client.ping(stub.host));
      expect(isDiginfraError(err, 'AUTH_REQUIRED')).toBe(true);
      expect(err.message).toBe(`${stub.host} refused the OAuth access token (a registry bearer token) it was sent`);
      expect(err.message).not.toContain('stale-token');
    } finally {
      await client.close();
    }
    expect(stub.realmCalls()).toBe(0);
  });
});
