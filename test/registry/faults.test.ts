/**
 * Faults a real registry does not produce on demand: rate limits, 5xx, connections dropped mid-body,
 * and redirects to blob storage on another host. nock stands in for the registry here only.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import nock from 'nock';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ingestBlob } from '../../src/content/index.js';
import { DiginfraError } from '../../src/errors.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { OCI_MANIFEST, RegistryClient, sha256Digest } from '../../src/registry/index.js';

const REGISTRY = 'https://reg.example';
const ref = parseOciReference('reg.example/team/rules:1.0.0');
const manifest = Buffer.from('{"schemaVersion":2}');
const manifestHeaders = {
  'content-type': OCI_MANIFEST,
  'docker-content-digest': sha256Digest(manifest),
  'content-length': String(manifest.length),
};

async function misbehavingServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; close: () => Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function client(extra: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  return new RegistryClient({ retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 2_000 }, ...extra });
}

beforeAll(() => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.cleanAll();
  expect(pending).toEqual([]);
});

describe('retries', () => {
  it('waits for Retry-After on 429, then succeeds', async () => {
    nock(REGISTRY).head('/v2/team/rules/manifests/1.0.0').reply(429, '', { 'retry-after': '1' });
    nock(REGISTRY).head('/v2/team/rules/manifests/1.0.0').reply(200, '', manifestHeaders);
    const c = client();
    const started = Date.now();
    const desc = await c.resolve(ref);
    expect(desc.digest).toBe(sha256Digest(manifest));
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await c.close();
  });

  it('gives up with RATE_LIMITED when Retry-After is longer than it will wait', async () => {
    nock(REGISTRY).head('/v2/team/rules/manifests/1.0.0').reply(429, '', { 'retry-after': '3600' });
    const c = client();
    const err = (await c.resolve(ref).catch((e: unknown) => e)) as DiginfraError;
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.message).toContain('reg.example');
    expect(err.message).toContain('3600 s');
    await c.close();
  });

  it('backs off on 503 and on a connection reset', async () => {
    // A real server that fails twice: nock cannot reset a kept-alive socket the way a proxy does.
    let calls = 0;
    const server = await misbehavingServer((req, res) => {
      calls++;
      if (calls === 1) return void res.writeHead(503).end();
      if (calls === 2) return void req.socket.destroy();
      res.writeHead(200, manifestHeaders).end(manifest);
    });
    const c = client({ hostSettings: () => ({ plainHttp: true }) });
    const fetched = await c.fetchManifest(parseOciReference(`${server.host}/team/rules:1.0.0`));
    expect(fetched.bytes.equals(manifest)).toBe(true);
    expect(calls).toBe(3);
    await c.close();
    await server.close();
  });

  it('stops after the last attempt with the registry status', async () => {
    nock(REGISTRY).head('/v2/team/rules/manifests/1.0.0').times(3).reply(502);
    const c = client();
    const err = (await c.resolve(ref).catch((e: unknown) => e)) as DiginfraError;
    expect(err.code).toBe('REGISTRY_ERROR');
    expect(err.message).toContain('502');
    await c.close();
  });
});

describe('tag listing', () => {
  it('follows Link pagination (Debian\'s registry ignores ?n=, so this is the only test of it)', async () => {
    nock(REGISTRY)
      .get('/v2/team/rules/tags/list')
      .query({ n: '2' })
      .reply(200, { name: 'team/rules', tags: ['a', 'b'] }, { link: '</v2/team/rules/tags/list?n=2&last=b>; rel="next"' });
    nock(REGISTRY)
      .get('/v2/team/rules/tags/list')
      .query({ n: '2', last: 'b' })
      .reply(200, { name: 'team/rules', tags: ['c'] });
    const c = client();
    expect(await c.listTags(ref, 2)).toEqual(['a', 'b', 'c']);
    await c.close();
  });
});

describe('blob downloads', () => {
  const data = Buffer.alloc(256 * 1024, 7);
  const desc = { digest: sha256Digest(data), size: data.length };

  it('starts over when the connection drops mid-body, and writes only the verified file', async () => {
    nock(REGISTRY)
      .get(`/v2/team/rules/blobs/${desc.digest}`)
      .reply(200, () => {
        let sent = false;
        return new Readable({
          read() {
            if (!sent) {
              sent = true;
              this.push(data.subarray(0, 1000));
            } else {
              this.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
            }
          },
        });
      }, { 'content-length': String(data.length) });
    nock(REGISTRY).get(`/v2/team/rules/blobs/${desc.digest}`).reply(200, data, { 'content-length': String(data.length) });
    const dir = await mkdtemp(join(tmpdir(), 'faults-'));
    const c = client();
    await ingestBlob(c, ref, desc, join(dir, 'blob'));
    expect((await readFile(join(dir, 'blob'))).equals(data)).toBe(true);
    expect(await readdir(dir)).toEqual(['blob']);
    await c.close();
  });

  it('follows a redirect to storage on another host without sending the registry credentials there', async () => {
    const auth = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;
    nock(REGISTRY).get(`/v2/team/rules/blobs/${desc.digest}`).reply(401, '', { 'www-authenticate': 'Basic realm="reg"' });
    nock(REGISTRY)
      .get(`/v2/team/rules/blobs/${desc.digest}`)
      .matchHeader('authorization', auth)
      .reply(307, '', { location: 'https://storage.example/blobs/abc?signature=xyz' });
    nock('https://storage.example', { badheaders: ['authorization'] })
      .get('/blobs/abc')
      .query({ signature: 'xyz' })
      .reply(200, data, { 'content-length': String(data.length) });
    const c = client({ credentials: { get: async () => ({ username: 'alice', password: 's3cret' }) } });
    const dir = await mkdtemp(join(tmpdir(), 'faults-'));
    await ingestBlob(c, ref, desc, join(dir, 'blob'));
    expect((await readFile(join(dir, 'blob'))).equals(data)).toBe(true);
    await c.close();
  });

  it('refuses a body longer than the manifest says before writing it', async () => {
    // Chunked encoding, so no Content-Length gives it away early: the streaming check must.
    const server = await misbehavingServer((_req, res) => {
      res.writeHead(200);
      res.write(data);
      res.end(data);
    });
    const dir = await mkdtemp(join(tmpdir(), 'faults-'));
    const c = client({ hostSettings: () => ({ plainHttp: true }) });
    const err = (await ingestBlob(c, parseOciReference(`${server.host}/team/rules:1`), desc, join(dir, 'blob')).catch((e: unknown) => e)) as DiginfraError;
    expect(err.code).toBe('SIZE_MISMATCH');
    expect(await readdir(dir)).toEqual([]);
    await c.close();
    await server.close();
  });
});

