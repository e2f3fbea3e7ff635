/**
 * Credentials from the config file (`registry.auth.basic`, `registry.auth.oauth`, `registry.auth.gcp`)
 * and docker's `registrytoken`: the built CLI against real registries.
 */
import { generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { cliEnv, runCli, ROOT } from '../helpers/cli.js';
import { jsonErrorIn } from './json-error.js';

const RULES = join(ROOT, 'test/fixtures/falco_rules.yaml');

async function writeConfig(env: NodeJS.ProcessEnv, config: unknown): Promise<void> {
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify(config));
}

function pushArgs(ref: string, version = '1.0.0'): string[] {
  return ['repo', 'push', ref, RULES, '--type', 'rulesfile', '--version', version, '-o', 'json'];
}

async function pullsBack(env: NodeJS.ProcessEnv, ref: string): Promise<void> {
  const dest = await mkdtemp(join(tmpdir(), 'pull-'));
  const pull = await runCli(['repo', 'pull', ref, '--dest', dest], { env });
  expect(pull.stderr).toBe('');
  expect(pull.code).toBe(0);
  expect((await readFile(join(dest, 'falco_rules.yaml'))).equals(await readFile(RULES))).toBe(true);
}

/** No `repo login` happened: diginfractl's own credentials file does not exist. */
async function expectNoLogin(env: NodeJS.ProcessEnv): Promise<void> {
  await expect(stat(join(env.XDG_CONFIG_HOME!, 'diginfractl/config.json'))).rejects.toThrow();
}

describe('registry.auth.basic', () => {
  let reg: TestRegistry;
  let tokenReg: TestRegistry;
  beforeAll(async () => {
    [reg, tokenReg] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startRegistry({ auth: 'token' })]);
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), tokenReg?.stop()]);
  });

  it('pushes and pulls with credentials from the config file, without a login', async () => {
    const env = await cliEnv();
    await writeConfig(env, { registry: { plainHttp: [reg.host], auth: { basic: [{ registry: reg.host, user: reg.username, password: reg.password }] } } });
    const push = await runCli([...pushArgs(`${reg.host}/rules/basic`), '--log-level', 'trace'], { env });
    expect(push.stderr).not.toContain(reg.password!);
    expect(push.code).toBe(0);
    expect(push.stdout).not.toContain(reg.password!);
    await pullsBack(env, `${reg.host}/rules/basic:1.0.0`);
    await expectNoLogin(env);
  });

  it('takes precedence over a credentials file', async () => {
    const env = await cliEnv();
    await mkdir(env.DOCKER_CONFIG!, { recursive: true });
    await writeFile(
      join(env.DOCKER_CONFIG!, 'config.json'),
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:stale-file-password`).toString('base64') } } }),
    );
    await writeConfig(env, { registry: { plainHttp: [reg.host], auth: { basic: [{ registry: reg.host, user: reg.username, password: reg.password }] } } });
    const push = await runCli(pushArgs(`${reg.host}/rules/precedence`), { env });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
  });

  it('gets tokens from a token-auth registry with them', async () => {
    const env = await cliEnv();
    await writeConfig(env, { registry: { plainHttp: [tokenReg.host], auth: { basic: [{ registry: tokenReg.host, user: tokenReg.username, password: tokenReg.password }] } } });
    const push = await runCli(pushArgs(`${tokenReg.host}/rules/basic`), { env });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    await pullsBack(env, `${tokenReg.host}/rules/basic:1.0.0`);
  });

  it('fails with AUTH_REQUIRED on a wrong password, without printing it', async () => {
    const env = await cliEnv();
    const wrong = 'wr0ng-config-passw0rd';
    await writeConfig(env, { registry: { plainHttp: [reg.host], auth: { basic: [{ registry: reg.host, user: reg.username, password: wrong }] } } });
    const push = await runCli(pushArgs(`${reg.host}/rules/wrong`), { env });
    expect(push.code).toBe(1);
    // -o json: the error is a JSON object on stderr.
    expect(jsonErrorIn(push.stderr)).toEqual({
      code: 'AUTH_REQUIRED',
      message: `${reg.host} refused the stored credentials`,
      hint: `the credentials for ${reg.host} come from registry.auth.basic in the config file: correct them there`,
    });
    expect(push.stdout + push.stderr).not.toContain(wrong);
    expect(push.stdout + push.stderr).not.toContain(reg.password!);
    const pull = await runCli(['repo', 'pull', `${reg.host}/rules/basic:1.0.0`, '--dest', await mkdtemp(join(tmpdir(), 'pull-'))], { env });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain(`${reg.host} refused the stored credentials`);
    expect(pull.stdout + pull.stderr).not.toContain(wrong);
  });
});

/**
 * An OAuth2 token endpoint for the client-credentials grant. To hand out tokens the token-auth
 * registry accepts, it asks the registry's own issuer (the challenge realm) with the harness's user,
 * for the scopes the client asked for.
 */
interface OAuthServer {
  url: string;
  /** Successful grants. */
  grants: () => number;
  /** Every POST, refused ones included. */
  posts: () => number;
  /** Tokens this server fetched from the registry's issuer. */
  issuerFetches: () => number;
  close: () => Promise<void>;
}

const CLIENT_ID = 'diginfractl-ci';
const CLIENT_SECRET = 'oauth-client-s3cret-9f2c';
/** A client whose grants succeed but whose tokens the registry refuses. */
const BOGUS_CLIENT_ID = 'bogus-token-client';

async function startOAuthServer(reg: TestRegistry): Promise<OAuthServer> {
  const challenge = await request(`${reg.url}/v2/`);
  await challenge.body.dump();
  const header = String(challenge.headers['www-authenticate'] ?? '');
  const realm = /realm="([^"]+)"/.exec(header)?.[1];
  const service = /service="([^"]+)"/.exec(header)?.[1];
  if (!realm || !service) throw new Error(`no Bearer challenge from ${reg.host}: ${header}`);
  let grants = 0;
  let posts = 0;
  let issuerFetches = 0;

  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: object): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    };
    let raw = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      void (async () => {
        if (req.method !== 'POST' || req.url !== '/oauth2/token') return reply(404, { error: 'not_found' });
        posts++;
        const form = new URLSearchParams(raw);
        if (form.get('grant_type') !== 'client_credentials') return reply(400, { error: 'unsupported_grant_type' });
        // Client authentication: HTTP Basic (form-urlencoded id and secret) or form fields.
        let id = form.get('client_id');
        let secret = form.get('client_secret');
        const auth = req.headers.authorization;
        if (auth?.startsWith('Basic ')) {
          const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
          const colon = decoded.indexOf(':');
          const unform = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
          id = unform(decoded.slice(0, colon));
          secret = unform(decoded.slice(colon + 1));
        }
        if ((id !== CLIENT_ID && id !== BOGUS_CLIENT_ID) || secret !== CLIENT_SECRET) {
          return reply(401, { error: 'invalid_client', error_description: 'client authentication failed' });
        }
        grants++;
        if (id === BOGUS_CLIENT_ID) return reply(200, { access_token: 'not-a-registry-token', token_type: 'Bearer', expires_in: 300 });
        const url = new URL(realm);
        url.searchParams.set('service', service);
        for (const scope of (form.get('scope') ?? '').split(' ').filter(Boolean)) url.searchParams.append('scope', scope);
        const issued = await request(url, { headers: { authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}` } });
        issuerFetches++;
        const body = (await issued.body.json()) as { token: string; expires_in: number };
        if (issued.statusCode !== 200) return reply(502, { error: 'server_error' });
        return reply(200, { access_token: body.token, token_type: 'Bearer', expires_in: body.expires_in });
      })().catch((err: unknown) => reply(500, { error: 'server_error', error_description: String(err) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/oauth2/token`,
    grants: () => grants,
    posts: () => posts,
    issuerFetches: () => issuerFetches,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('registry.auth.oauth', () => {
  let reg: TestRegistry;
  let oauth: OAuthServer;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    oauth = await startOAuthServer(reg);
  });
  afterAll(async () => {
    await oauth?.close();
    await reg?.stop();
  });

  const oauthConfig = (extra: Record<string, unknown> = {}) => ({
    registry: {
      plainHttp: [reg.host],
      auth: {
        oauth: [
          {
            registry: reg.host,
            clientID: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            tokenURL: oauth.url,
            scopes: ['repository:rules/oauth:pull,push', 'repository:rules/oauth2:pull,push'],
            ...extra,
          },
        ],
      },
    },
  });

  it('pushes and pulls with the access token as the registry bearer token, one grant per process', async () => {
    const env = await cliEnv();
    await writeConfig(env, oauthConfig());
    const grants = oauth.grants();
    const issued = reg.tokenRequests!();
    const fetched = oauth.issuerFetches();

    const push = await runCli(pushArgs(`${reg.host}/rules/oauth`), { env });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ digest: expect.stringMatching(/^sha256:/) });
    await pullsBack(env, `${reg.host}/rules/oauth:1.0.0`);
    const second = await runCli(pushArgs(`${reg.host}/rules/oauth2`, '2.0.0'), { env });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    await pullsBack(env, `${reg.host}/rules/oauth2:2.0.0`);

    // Four processes, each with its own in-memory cache: one grant each, however many requests.
    expect(oauth.grants() - grants).toBe(4);
    // Every token the registry's issuer handed out went to the OAuth server, none to the CLI.
    expect(oauth.issuerFetches() - fetched).toBe(4);
    expect(reg.tokenRequests!() - issued).toBe(oauth.issuerFetches() - fetched);
    await expectNoLogin(env);
  });

  it('reports a wrong client secret naming the token endpoint, never the secret', async () => {
    const env = await cliEnv();
    const wrong = 'not-the-client-s3cret';
    await writeConfig(env, oauthConfig({ clientSecret: wrong }));
    const issued = reg.tokenRequests!();
    const posts = oauth.posts();
    const push = await runCli(pushArgs(`${reg.host}/rules/oauth`, '9.9.9'), { env });
    expect(push.code).toBe(1);
    const host = new URL(oauth.url).host;
    expect(jsonErrorIn(push.stderr).message).toContain(`OAuth token endpoint ${host} refused the client credentials for ${reg.host} (HTTP 401) (invalid_client: client authentication failed)`);
    expect(push.stderr).toContain('registry.auth.oauth');
    expect(push.stdout + push.stderr).not.toContain(wrong);
    expect(push.stdout + push.stderr).not.toContain(CLIENT_SECRET);
    expect(oauth.posts() - posts).toBe(2); // Basic, then the form-field retry
    expect(reg.tokenRequests!()).toBe(issued);
  });

  it('reports an access token the registry refuses', async () => {
    const env = await cliEnv();
    await writeConfig(env, oauthConfig({ clientID: BOGUS_CLIENT_ID }));
    const issued = reg.tokenRequests!();
    const pull = await runCli(['repo', 'pull', `${reg.host}/rules/oauth:1.0.0`, '--dest', await mkdtemp(join(tmpdir(), 'pull-'))], { env });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain(`error: ${reg.host} refused the OAuth access token`);
    expect(pull.stderr).not.toContain('not-a-registry-token');
    expect(reg.tokenRequests!()).toBe(issued);
  });
});

describe('docker config.json registrytoken', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('is sent to the registry as its bearer token', async () => {
    const challenge = await request(`${reg.url}/v2/`);
    await challenge.body.dump();
    const header = String(challenge.headers['www-authenticate']);
    const realm = new URL(/realm="([^"]+)"/.exec(header)![1]!);
    realm.searchParams.set('service', /service="([^"]+)"/.exec(header)![1]!);
    realm.searchParams.set('scope', 'repository:rules/regtoken:pull,push');
    const res = await request(realm, { headers: { authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}` } });
    const { token } = (await res.body.json()) as { token: string };

    const env = await cliEnv();
    await mkdir(env.DOCKER_CONFIG!, { recursive: true });
    await writeFile(join(env.DOCKER_CONFIG!, 'config.json'), JSON.stringify({ auths: { [reg.host]: { registrytoken: token } } }));
    await writeConfig(env, { registry: { plainHttp: [reg.host] } });
    const issued = reg.tokenRequests!();
    const push = await runCli(pushArgs(`${reg.host}/rules/regtoken`), { env });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    await pullsBack(env, `${reg.host}/rules/regtoken:1.0.0`);
    expect(reg.tokenRequests!()).toBe(issued);
  });
});

/**
 * Google's application default credentials, against stand-ins that speak Google's documented
 * protocols: a metadata server (GCE_METADATA_HOST) and an OAuth token endpoint (the key file's
 * token_uri). The registry (token auth) knows one user, oauth2accesstoken, whose password is the
 * access token they hand out, as Artifact Registry does.
 */
describe('registry.auth.gcp (Google application default credentials)', () => {
  const ACCESS_TOKEN = 'ya29.c.test-access-token-0123456789';
  let reg: TestRegistry;
  let google: Server;
  let googleHost: string;
  const hits: { metadata: number; jwt: number; refresh: number } = { metadata: 0, jwt: 0, refresh: 0 };
  let saPublicKey: KeyObject;
  let tokenReply: { status: number; body: unknown } | undefined;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token', username: 'oauth2accesstoken', password: ACCESS_TOKEN });
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    saPublicKey = pair.publicKey;
    saPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    google = createServer((req, res) => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (req.method === 'GET' && req.url?.split('?')[0] === '/computeMetadata/v1/instance/service-accounts/default/token') {
          // The real server refuses requests without this header (a guard against SSRF).
          if (req.headers['metadata-flavor'] !== 'Google') return send(403, { error: 'missing Metadata-Flavor' });
          hits.metadata++;
          return send(200, { access_token: ACCESS_TOKEN, expires_in: 3599, token_type: 'Bearer' });
        }
        if (req.method === 'POST' && req.url === '/token') {
          if (tokenReply) return send(tokenReply.status, tokenReply.body);
          const form = new URLSearchParams(body);
          if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
            // RFC 7523: a JWT signed by the service account's key, for this endpoint and scope.
            const [h, c, sig] = (form.get('assertion') ?? '').split('.');
            const ok = verify('sha256', Buffer.from(`${h}.${c}`), saPublicKey, Buffer.from(sig ?? '', 'base64url'));
            const header = JSON.parse(Buffer.from(h!, 'base64url').toString()) as { alg: string; kid?: string };
            const claims = JSON.parse(Buffer.from(c!, 'base64url').toString()) as { iss: string; aud: string; scope: string; iat: number; exp: number };
            if (!ok || header.alg !== 'RS256' || header.kid !== 'key-1' || claims.iss !== 'reader@proj.iam.gserviceaccount.com' || claims.aud !== `http://${googleHost}/token` || claims.scope !== 'https://www.googleapis.com/auth/cloud-platform' || claims.exp - claims.iat !== 3600) {
              return send(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
            }
            hits.jwt++;
            return send(200, { access_token: ACCESS_TOKEN, expires_in: 3599, token_type: 'Bearer' });
          }
          if (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === '1//refresh' && form.get('client_id') === 'cid' && form.get('client_secret') === 'csecret') {
            hits.refresh++;
            return send(200, { access_token: ACCESS_TOKEN, expires_in: 3599 });
          }
          return send(400, { error: 'invalid_grant' });
        }
        send(404, { error: 'not found' });
      });
    });
    await new Promise<void>((ok) => google.listen(0, '127.0.0.1', ok));
    googleHost = `127.0.0.1:${(google.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await reg?.stop();
    await new Promise<void>((ok) => (google ? google.close(() => ok()) : ok()));
  });
  let saPem: string;

  /** A sandbox with registry.auth.gcp for the registry, no key file, and the metadata stand-in (or `metadata`). */
  async function gcpEnv(extra: NodeJS.ProcessEnv = {}, metadata = googleHost): Promise<NodeJS.ProcessEnv & { HOME: string }> {
    const env = await cliEnv({ GCE_METADATA_HOST: metadata });
    delete env.GOOGLE_APPLICATION_CREDENTIALS;
    delete env.CLOUDSDK_CONFIG;
    Object.assign(env, extra);
    await writeConfig(env, { registry: { plainHttp: [reg.host], auth: { gcp: [{ registry: reg.host }] } } });
    return env;
  }

  it('on a GKE node or VM: a token from the metadata server; push and pull work, and the token is never printed', async () => {
    const env = await gcpEnv();
    const before = hits.metadata;
    const push = await runCli([...pushArgs(`${reg.host}/rules/gcp-metadata`), '--log-level', 'debug'], { env });
    expect(push.code, push.stderr).toBe(0);
    expect(hits.metadata).toBeGreaterThan(before);
    expect(push.stderr + push.stdout).not.toContain(ACCESS_TOKEN);
    await pullsBack(env, `${reg.host}/rules/gcp-metadata:1.0.0`);
    await expectNoLogin(env);
  });

  it('GOOGLE_APPLICATION_CREDENTIALS with a service account key: a signed JWT exchanged at its token_uri, before the metadata server', async () => {
    const keyFile = join(await mkdtemp(join(tmpdir(), 'gcp-key-')), 'key.json');
    await writeFile(keyFile, JSON.stringify({ type: 'service_account', project_id: 'proj', private_key_id: 'key-1', private_key: saPem, client_email: 'reader@proj.iam.gserviceaccount.com', token_uri: `http://${googleHost}/token` }));
    const env = await gcpEnv({ GOOGLE_APPLICATION_CREDENTIALS: keyFile });
    const before = { ...hits };
    const push = await runCli(pushArgs(`${reg.host}/rules/gcp-sa`), { env });
    expect(push.code, push.stderr).toBe(0);
    expect(hits.jwt).toBe(before.jwt + 1);
    expect(hits.metadata).toBe(before.metadata);

    // A key the endpoint refuses: the error names the file and the endpoint, never the key.
    tokenReply = { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
    try {
      const refused = await runCli(pushArgs(`${reg.host}/rules/gcp-sa2`), { env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`Google token endpoint ${googleHost} refused the credentials of ${keyFile} for ${reg.host} (HTTP 400) (invalid_grant: Invalid JWT Signature.)`);
      expect(refused.stderr).not.toContain('PRIVATE KEY');
    } finally {
      tokenReply = undefined;
    }
  });

  it("gcloud's application default credentials (authorized_user): the refresh token exchanged", async () => {
    const env = await gcpEnv();
    const gcloud = join(env.HOME, '.config', 'gcloud');
    await mkdir(gcloud, { recursive: true });
    await writeFile(join(gcloud, 'application_default_credentials.json'), JSON.stringify({ type: 'authorized_user', client_id: 'cid', client_secret: 'csecret', refresh_token: '1//refresh', token_uri: `http://${googleHost}/token` }));
    const before = { ...hits };
    const push = await runCli(pushArgs(`${reg.host}/rules/gcp-user`), { env });
    expect(push.code, push.stderr).toBe(0);
    expect(hits.refresh).toBe(before.refresh + 1);
    expect(hits.metadata).toBe(before.metadata);
  });

  it('with no credentials anywhere: an error that says where it looked and what to do', async () => {
    const env = await gcpEnv({}, '127.0.0.1:9');
    const push = await runCli(pushArgs(`${reg.host}/rules/gcp-none`), { env });
    expect(push.code).toBe(1);
    expect(push.stderr).toContain(`no Google credentials for ${reg.host}: GOOGLE_APPLICATION_CREDENTIALS is not set, gcloud has no application default credentials, and the metadata server 127.0.0.1:9 does not exist here`);
    expect(push.stderr).toContain('Workload Identity');
  });

  it('config validate accepts it, from the file and the environment', async () => {
    const env = await cliEnv({ DIGINFRACTL_REGISTRY_AUTH_GCP: 'gcr.io,us-docker.pkg.dev' });
    const show = await runCli(['config', 'show', '-o', 'json'], { env });
    expect(show.stderr).toBe('');
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('us-docker.pkg.dev');
  });
});
