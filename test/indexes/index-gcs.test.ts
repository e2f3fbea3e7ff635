/**
 * gs://BUCKET/OBJECT indexes (falcoctl's gs backend), through the built CLI, against a stand-in that
 * speaks Cloud Storage's JSON API (at DIGINFRACTL_GCS_ENDPOINT, or as an emulator at
 * STORAGE_EMULATOR_HOST) and Google's metadata server (GCE_METADATA_HOST): a private bucket read with
 * the node's read-only token, a public one read anonymously on a machine with no Google identity, no
 * token ever sent to an emulator, conditional requests as for https.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { deadPort } from '../helpers/net.js';
import { GOOD_INDEX, serve, type Served } from './server.js';

const TOKEN = 'ya29.c.node-token-for-storage';
const ETAG = '"CJjv3aLx8fkCEAE="';
let gcs: Served;
const scopesAsked: string[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/token') {
    scopesAsked.push(url.searchParams.get('scopes') ?? '');
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: TOKEN, expires_in: 3599, token_type: 'Bearer' }));
    return;
  }
  // GET /storage/v1/b/BUCKET/o/OBJECT?alt=media (the object name is URL-encoded, slashes included).
  const m = /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/.exec(url.pathname);
  if (!m || url.searchParams.get('alt') !== 'media') {
    res.writeHead(404).end();
    return;
  }
  const [bucket, object] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
  if (object !== 'diginfra/index.yaml' || !['private-bucket', 'public-bucket'].includes(bucket)) {
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 404, message: 'No such object' } }));
    return;
  }
  if (bucket === 'private-bucket' && req.headers.authorization !== `Bearer ${TOKEN}`) {
    res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 401, message: 'Anonymous caller does not have storage.objects.get access' } }));
    return;
  }
  if (req.headers['if-none-match'] === ETAG) {
    res.writeHead(304, { etag: ETAG }).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', etag: ETAG }).end(GOOD_INDEX);
}

beforeAll(async () => {
  gcs = await serve(handler);
});
afterAll(async () => {
  await gcs?.close();
});

async function env(metadata: string, endpoint: Record<string, string> = { DIGINFRACTL_GCS_ENDPOINT: gcs.base }) {
  const e = await cliEnv({ ...endpoint, GCE_METADATA_HOST: metadata });
  delete e.GOOGLE_APPLICATION_CREDENTIALS;
  delete e.CLOUDSDK_CONFIG;
  return e;
}

describe('gs:// indexes', () => {
  it("a private bucket: read with the node's Google token; search uses it; an update costs one 304", async () => {
    const e = await env(new URL(gcs.base).host);
    const add = await runCli(['index', 'add', 'corp', 'gs://private-bucket/diginfra/index.yaml'], { env: e });
    expect(add.stderr).not.toContain('error');
    expect(add.code).toBe(0);
    const read = gcs.requests.filter((r) => r.path.startsWith('/storage/'));
    expect(read.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    // A read-only token: all an index needs.
    expect(scopesAsked.at(-1)).toBe('https://www.googleapis.com/auth/devstorage.read_only');
    const search = await runCli(['artifact', 'search', 'audit', '--index', 'corp'], { env: e });
    expect(search.code).toBe(0);
    expect(search.stdout).toContain('k8saudit-rules');
    const before = gcs.requests.length;
    const update = await runCli(['index', 'update', 'corp'], { env: e });
    expect(update.code, update.stderr).toBe(0);
    const storage = gcs.requests.slice(before).filter((r) => r.path.startsWith('/storage/'));
    expect(storage).toHaveLength(1);
    expect(storage[0]!.headers['if-none-match']).toBe(ETAG);
    expect(add.stderr + search.stderr + update.stderr).not.toContain(TOKEN);
  });

  it('with no Google identity on the machine: a public bucket is read anonymously, a private one fails saying why', async () => {
    const e = await env(`127.0.0.1:${await deadPort()}`);
    const pub = await runCli(['index', 'add', 'public', 'gs://public-bucket/diginfra/index.yaml'], { env: e });
    expect(pub.code, pub.stderr).toBe(0);
    expect(gcs.requests.at(-1)!.headers.authorization).toBeUndefined();
    const priv = await runCli(['index', 'add', 'private', 'gs://private-bucket/diginfra/index.yaml'], { env: e });
    expect(priv.code).toBe(1);
    expect(priv.stderr).toContain('answered 401 Unauthorized');
    expect(priv.stderr).toContain('this machine has no Google credentials, so the bucket was read anonymously; give the Google service account of this node (or GOOGLE_APPLICATION_CREDENTIALS) storage.objects.get on gs://private-bucket');
    const list = await runCli(['index', 'list'], { env: e });
    expect(list.stdout).not.toContain('private');
  });

  it("an emulator (STORAGE_EMULATOR_HOST) never gets a token, as with Google's own clients; an http:// endpoint elsewhere than this machine is refused", async () => {
    const e = await env(new URL(gcs.base).host, { STORAGE_EMULATOR_HOST: new URL(gcs.base).host });
    const pub = await runCli(['index', 'add', 'emulated', 'gs://public-bucket/diginfra/index.yaml'], { env: e });
    expect(pub.code, pub.stderr).toBe(0);
    expect(gcs.requests.at(-1)!.headers.authorization).toBeUndefined();
    const far = await env(new URL(gcs.base).host, { DIGINFRACTL_GCS_ENDPOINT: 'http://storage.example.com' });
    const r = await runCli(['index', 'add', 'far', 'gs://private-bucket/diginfra/index.yaml'], { env: far });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('DIGINFRACTL_GCS_ENDPOINT http://storage.example.com must be https:// (Google credentials are sent to it)');
  });

  it('checks the URL and refuses basic credentials for it', async () => {
    const e = await env(new URL(gcs.base).host);
    const noObject = await runCli(['index', 'add', 'x', 'gs://bucket-only'], { env: e });
    expect(noObject.code).toBe(2);
    expect(noObject.stderr).toContain('index URL "gs://bucket-only": must be gs://BUCKET/OBJECT');
    const creds = await runCli(['index', 'add', 'x', 'gs://private-bucket/diginfra/index.yaml', '--username', 'u', '--password-stdin'], { env: e, input: 'p\n' });
    expect(creds.code).toBe(2);
    expect(creds.stderr).toContain('gs:// uses Google application default credentials');
  });
});
