/**
 * The real-registry harness (test/helpers/registry.ts): each variant really starts and enforces what
 * it claims, storage is where blobPath says, and the distribution v2.8 behaviour that registry tests
 * rely on (or must work around) is pinned down here, so a Debian upgrade that changes it shows up.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request, type Dispatcher } from 'undici';
import { blobPath, startRegistry, type TestRegistry } from './helpers/registry.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

async function call(
  url: string,
  init: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: Buffer | string; dispatcher?: Dispatcher } = {},
): Promise<Answer> {
  const res = await request(url, init);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: res.statusCode, headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

const digestOf = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const basic = (reg: TestRegistry): string => `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;

/** Push a blob the two-request monolithic way (POST for a session, PUT with the whole body). */
async function pushBlob(reg: TestRegistry, repo: string, data: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const digest = digestOf(data);
  const started = await call(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  expect(started.status).toBe(202);
  const location = new URL(started.headers.location!, reg.url);
  location.searchParams.set('digest', digest);
  const done = await call(location.href, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(done.status).toBe(201);
  expect(done.headers['docker-content-digest']).toBe(digest);
  return digest;
}

describe('anonymous registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(() => reg?.stop());

  it('answers /v2/ with 200 and no credentials', async () => {
    expect(reg.url).toBe(`http://${reg.host}`);
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const res = await call(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('stores a pushed blob at blobPath and serves what is on disk', async () => {
    const data = Buffer.from('tiny blob for the harness\n');
    const digest = await pushBlob(reg, 'harness/storage', data);

    const head = await call(`${reg.url}/v2/harness/storage/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(data.length));
    expect(await readFile(blobPath(reg, digest))).toEqual(data);

    // No blob-descriptor cache: a tampered file is served as it is, for digest-mismatch tests.
    const tampered = Buffer.from('TINY BLOB FOR THE HARNESS\n');
    await writeFile(blobPath(reg, digest), tampered);
    const got = await call(`${reg.url}/v2/harness/storage/blobs/${digest}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(tampered);
  });
});

describe('distribution v2.8 behaviour that registry tests depend on', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(() => reg?.stop());

  it('ignores the body of a single POST ?digest= upload (monolithic needs POST then PUT)', async () => {
    const data = Buffer.from('single post');
    const digest = digestOf(data);
    const res = await call(`${reg.url}/v2/quirks/single/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    expect(res.status).toBe(202);
    expect((await call(`${reg.url}/v2/quirks/single/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('accepts a chunked PATCH upload', async () => {
    const chunks = [Buffer.from('first chunk, '), Buffer.from('second chunk')];
    let location = new URL(
      (await call(`${reg.url}/v2/quirks/chunked/blobs/uploads/`, { method: 'POST' })).headers.location!,
      reg.url,
    );
    let offset = 0;
    for (const chunk of chunks) {
      const res = await call(location.href, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk,
      });
      expect(res.status).toBe(202);
      offset += chunk.length;
      // v2.8 answers with an inclusive `Range: 0-N` (no `bytes=` prefix).
      expect(res.headers.range).toBe(`0-${offset - 1}`);
      location = new URL(res.headers.location!, reg.url);
    }
    const digest = digestOf(Buffer.concat(chunks));
    location.searchParams.set('digest', digest);
    expect((await call(location.href, { method: 'PUT' })).status).toBe(201);
    expect(await readFile(blobPath(reg, digest))).toEqual(Buffer.concat(chunks));
  });

  it('mounts a blob across repositories, and falls back to an upload session for an unknown one', async () => {
    const digest = await pushBlob(reg, 'quirks/from', Buffer.from('mount me'));
    const mounted = await call(`${reg.url}/v2/quirks/to/blobs/uploads/?mount=${digest}&from=quirks/from`, { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect(mounted.headers['docker-content-digest']).toBe(digest);

    const missing = digestOf('not pushed anywhere');
    const fallback = await call(`${reg.url}/v2/quirks/to/blobs/uploads/?mount=${missing}&from=quirks/from`, { method: 'POST' });
    expect(fallback.status).toBe(202);
  });

  it('takes OCI manifests with custom media types but serves them only to an OCI Accept', async () => {
    const config = await pushBlob(reg, 'quirks/oci', Buffer.from('{}'));
    const layer = await pushBlob(reg, 'quirks/oci', Buffer.from('layer'));
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.artifact.v1',
      config: { mediaType: 'application/vnd.example.config.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/vnd.example.layer.v1.tar+gzip', digest: layer, size: 5 }],
    });
    const put = await call(`${reg.url}/v2/quirks/oci/manifests/1.0.0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);
    expect(put.headers['docker-content-digest']).toBe(digestOf(manifest));

    expect((await call(`${reg.url}/v2/quirks/oci/manifests/1.0.0`)).status).toBe(404);
    const got = await call(`${reg.url}/v2/quirks/oci/manifests/1.0.0`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe(manifest);

    // No referrers API, and tag deletion is refused (delete manifests by digest).
    expect((await call(`${reg.url}/v2/quirks/oci/referrers/${digestOf(manifest)}`)).status).toBe(404);
    expect((await call(`${reg.url}/v2/quirks/oci/manifests/1.0.0`, { method: 'DELETE' })).status).toBe(400);
    expect((await call(`${reg.url}/v2/quirks/oci/manifests/${digestOf(manifest)}`, { method: 'DELETE' })).status).toBe(202);
  });
});

describe('htpasswd registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(() => reg?.stop());

  it('challenges with Basic and lets the right credentials in', async () => {
    expect(reg.username).toBeTruthy();
    expect(reg.password).toBeTruthy();
    const anonymous = await call(`${reg.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic realm="[^"]+"/);

    const wrong = Buffer.from(`${reg.username}:not-the-password`).toString('base64');
    expect((await call(`${reg.url}/v2/`, { headers: { authorization: `Basic ${wrong}` } })).status).toBe(401);
    expect((await call(`${reg.url}/v2/`, { headers: { authorization: basic(reg) } })).status).toBe(200);
  });
});

describe('TLS registry', () => {
  let reg: TestRegistry;
  let trusting: Agent;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true });
    trusting = new Agent({ connect: { ca: await readFile(reg.caFile!, 'utf8') } });
  });
  afterAll(async () => {
    await trusting?.close();
    await reg?.stop();
  });

  it('is refused without the CA and answers 200 with it', async () => {
    expect(reg.url).toBe(`https://${reg.host}`);
    const plain = new Agent();
    try {
      await expect(call(`${reg.url}/v2/`, { dispatcher: plain })).rejects.toMatchObject({
        code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|CERT/),
      });
    } finally {
      await plain.close();
    }
    expect((await call(`${reg.url}/v2/`, { dispatcher: trusting })).status).toBe(200);
  });

  it('combines with htpasswd', async () => {
    const both = await startRegistry({ auth: 'htpasswd', tls: true });
    const agent = new Agent({ connect: { ca: await readFile(both.caFile!, 'utf8') } });
    try {
      expect(both.url).toBe(`https://${both.host}`);
      expect((await call(`${both.url}/v2/`, { dispatcher: agent })).status).toBe(401);
      const ok = await call(`${both.url}/v2/`, { dispatcher: agent, headers: { authorization: basic(both) } });
      expect(ok.status).toBe(200);
    } finally {
      await agent.close();
      await both.stop();
    }
  });
});

/** Parse `Bearer realm="...",service="...",scope="..."` into its parameters. */
function bearerChallenge(header: string | undefined): Record<string, string> {
  expect(header).toMatch(/^Bearer /);
  return Object.fromEntries([...header!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

/**
 * A challenge's scopes in a canonical order: v2.8 lists the scopes, and the actions within one, in
 * Go map order, which changes from request to request.
 */
function scopes(challengeScope: string | undefined): string[] {
  return (challengeScope ?? '')
    .split(' ')
    .map((scope) => {
      const cut = scope.lastIndexOf(':') + 1;
      return scope.slice(0, cut) + scope.slice(cut).split(',').sort().join(',');
    })
    .sort();
}

async function fetchToken(
  realm: string,
  service: string,
  scopes: string[],
  init: { authorization?: string; dispatcher?: Dispatcher } = {},
): Promise<Answer & { token?: string }> {
  const url = new URL(realm);
  url.searchParams.set('service', service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const res = await call(url.href, {
    ...(init.dispatcher ? { dispatcher: init.dispatcher } : {}),
    ...(init.authorization ? { headers: { authorization: init.authorization } } : {}),
  });
  return res.status === 200 ? { ...res, token: JSON.parse(res.body.toString()).token } : res;
}

describe('token registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  afterAll(() => reg?.stop());

  it('challenges with Bearer, and a fetched token gets in', async () => {
    const anonymous = await call(`${reg.url}/v2/`);
    expect(anonymous.status).toBe(401);
    const { realm, service } = bearerChallenge(anonymous.headers['www-authenticate']);
    expect(realm).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);

    const before = reg.tokenRequests!();
    const issued = await fetchToken(realm!, service!, [], { authorization: basic(reg) });
    expect(issued.status).toBe(200);
    const body = JSON.parse(issued.body.toString());
    expect(body).toMatchObject({ access_token: body.token, expires_in: 300 });
    expect(reg.tokenRequests!()).toBe(before + 1);

    expect((await call(`${reg.url}/v2/`, { headers: { authorization: `Bearer ${issued.token}` } })).status).toBe(200);
  });

  it('gives anonymous callers pull only, and credentials push', async () => {
    const { realm, service } = bearerChallenge((await call(`${reg.url}/v2/`)).headers['www-authenticate']);
    const scope = 'repository:harness/token:pull,push';

    const anonymous = await fetchToken(realm!, service!, [scope]);
    expect(anonymous.status).toBe(200);
    const pullOnly = { authorization: `Bearer ${anonymous.token}` };
    // A missing manifest is a 404, not a 401: the anonymous token really grants pull.
    expect((await call(`${reg.url}/v2/harness/token/manifests/latest`, { headers: pullOnly })).status).toBe(404);
    const denied = await call(`${reg.url}/v2/harness/token/blobs/uploads/`, { method: 'POST', headers: pullOnly });
    expect(denied.status).toBe(401);
    const challenge = bearerChallenge(denied.headers['www-authenticate']);
    expect(challenge.error).toBe('insufficient_scope');
    expect(scopes(challenge.scope)).toEqual(scopes(scope));

    const wrong = Buffer.from(`${reg.username}:not-the-password`).toString('base64');
    expect((await fetchToken(realm!, service!, [scope], { authorization: `Basic ${wrong}` })).status).toBe(401);

    const authorized = await fetchToken(realm!, service!, [scope], { authorization: basic(reg) });
    const digest = await pushBlob(reg, 'harness/token', Buffer.from('pushed with a token'), {
      authorization: `Bearer ${authorized.token}`,
    });
    expect(await readFile(blobPath(reg, digest), 'utf8')).toBe('pushed with a token');
  });

  it('needs pull on the source repository in the same token to mount across repositories', async () => {
    const { realm, service } = bearerChallenge((await call(`${reg.url}/v2/`)).headers['www-authenticate']);
    const source = await fetchToken(realm!, service!, ['repository:harness/src:pull,push'], { authorization: basic(reg) });
    const digest = await pushBlob(reg, 'harness/src', Buffer.from('shared layer'), { authorization: `Bearer ${source.token}` });
    const mountUrl = `${reg.url}/v2/harness/dst/blobs/uploads/?mount=${digest}&from=harness/src`;

    const targetOnly = await fetchToken(realm!, service!, ['repository:harness/dst:pull,push'], { authorization: basic(reg) });
    const refused = await call(mountUrl, { method: 'POST', headers: { authorization: `Bearer ${targetOnly.token}` } });
    expect(refused.status).toBe(401);
    expect(scopes(bearerChallenge(refused.headers['www-authenticate']).scope)).toEqual([
      'repository:harness/dst:pull,push',
      'repository:harness/src:pull',
    ]);

    const both = await fetchToken(realm!, service!, ['repository:harness/dst:pull,push', 'repository:harness/src:pull'], {
      authorization: basic(reg),
    });
    expect((await call(mountUrl, { method: 'POST', headers: { authorization: `Bearer ${both.token}` } })).status).toBe(201);
  });

  it('combines with TLS: the realm is https and the same CA covers it', async () => {
    const secure = await startRegistry({ auth: 'token', tls: true });
    const agent = new Agent({ connect: { ca: await readFile(secure.caFile!, 'utf8') } });
    try {
      const challenge = await call(`${secure.url}/v2/`, { dispatcher: agent });
      expect(challenge.status).toBe(401);
      const { realm, service } = bearerChallenge(challenge.headers['www-authenticate']);
      expect(realm).toMatch(/^https:\/\//);
      const issued = await fetchToken(realm!, service!, [], { dispatcher: agent });
      const ok = await call(`${secure.url}/v2/`, { dispatcher: agent, headers: { authorization: `Bearer ${issued.token}` } });
      expect(ok.status).toBe(200);
    } finally {
      await agent.close();
      await secure.stop();
    }
  });
});

describe('startRegistry / stop', () => {
  it('stops the registry and removes its temp dir', async () => {
    const reg = await startRegistry();
    await pushBlob(reg, 'harness/stop', Buffer.from('x'));
    await reg.stop();
    await expect(call(`${reg.url}/v2/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(readFile(blobPath(reg, digestOf('x')))).rejects.toMatchObject({ code: 'ENOENT' });
    await reg.stop(); // a second stop is harmless
  });
});
