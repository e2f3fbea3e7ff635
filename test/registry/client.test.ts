/**
 * The registry client against a real CNCF distribution registry, in each auth and TLS variant.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestBlob } from '../../src/content/index.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { bufferBlob, type CredentialSource, OCI_MANIFEST, RegistryClient, sha256Digest } from '../../src/registry/index.js';
import { blobPath, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { errorOf } from '../helpers/errors.js';

function clientFor(reg: TestRegistry, opts: { credentials?: boolean; chunkSize?: number; onResponse?: (i: { method: string; status: number | 'error' }) => void } = {}): RegistryClient {
  const credentials: CredentialSource | undefined =
    opts.credentials === false || !reg.username
      ? undefined
      : { get: async (host) => (host === reg.host ? { username: reg.username!, password: reg.password! } : undefined) };
  return new RegistryClient({
    hostSettings: () => ({ plainHttp: reg.url.startsWith('http:'), ...(reg.caFile !== undefined && { caFile: reg.caFile }) }),
    ...(credentials !== undefined && { credentials }),
    ...(opts.chunkSize !== undefined && { chunkSize: opts.chunkSize }),
    ...(opts.onResponse !== undefined && { onResponse: opts.onResponse }),
    retry: { attempts: 2, baseDelayMs: 10 },
  });
}

async function pushSmallArtifact(client: RegistryClient, refText: string, content: Buffer) {
  const ref = parseOciReference(refText);
  const layer = bufferBlob(content);
  const config = bufferBlob(Buffer.from('{"name":"x","version":"1.0.0"}'));
  await client.pushBlob(ref, layer);
  await client.pushBlob(ref, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.cncf.diginfra.rulesfile.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.cncf.diginfra.rulesfile.layer.v1+tar.gz', digest: layer.digest, size: layer.size }],
    }),
  );
  const desc = await client.pushManifest(ref, manifest, OCI_MANIFEST);
  return { ref, layer, config, manifest, desc };
}

describe.each([
  { name: 'anonymous', opts: {} },
  { name: 'htpasswd basic auth', opts: { auth: 'htpasswd' as const } },
  { name: 'TLS with a private CA', opts: { tls: true } },
  { name: 'token auth', opts: { auth: 'token' as const } },
  { name: 'token auth over TLS', opts: { auth: 'token' as const, tls: true } },
])('registry client, $name', ({ opts }) => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry(opts);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('pushes and reads back manifests, tags and blobs', async () => {
    const client = clientFor(reg);
    const content = randomBytes(4096);
    const { ref, layer, desc, manifest } = await pushSmallArtifact(client, `${reg.host}/team/rules:1.0.0`, content);
    expect(desc.digest).toBe(sha256Digest(manifest));

    const head = await client.resolve(ref);
    expect(head).toEqual({ mediaType: OCI_MANIFEST, digest: desc.digest, size: manifest.length });
    const fetched = await client.fetchManifest({ ...ref, tag: undefined, digest: desc.digest } as never);
    expect(fetched.bytes.equals(manifest)).toBe(true);
    expect(await client.listTags(ref)).toEqual(['1.0.0']);
    expect(await client.blobExists(ref, layer.digest)).toBe(true);
    expect(await client.readBlob(ref, layer, 1 << 20)).toEqual(content);
    expect(await client.pushBlob(ref, layer)).toBe('exists');
    await client.close();
  });

  it('names the tag that is missing', async () => {
    const client = clientFor(reg);
    const err = await errorOf(client.resolve(parseOciReference(`${reg.host}/team/rules:9.9.9`)));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(`${reg.host}/team/rules:9.9.9`);
    await client.close();
  });

  if (opts.auth) {
    it('refuses without credentials and says to log in', async () => {
      const anonymous = clientFor(reg, { credentials: false });
      const err = await errorOf(pushSmallArtifact(anonymous, `${reg.host}/team/denied:1`, Buffer.from('x')));
      expect(err.code).toBe('AUTH_REQUIRED');
      expect(err.hint).toContain(`diginfractl repo login ${reg.host}`);
      await anonymous.close();
    });

    it('checks a login and rejects a wrong password', async () => {
      const client = clientFor(reg, { credentials: false });
      await client.checkLogin(reg.host, { username: reg.username!, password: reg.password! });
      const err = await errorOf(client.checkLogin(reg.host, { username: reg.username!, password: 'wrong-password' }));
      expect(err.code).toBe('AUTH_REQUIRED');
      expect(err.message).not.toContain('wrong-password');
      await client.close();
    });
  }
});

describe('registry client details', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('reuses one token per scope across requests', async () => {
    const client = clientFor(reg);
    const before = reg.tokenRequests!();
    const ref = parseOciReference(`${reg.host}/cache/me:1`);
    await pushSmallArtifact(client, `${reg.host}/cache/me:1`, randomBytes(100));
    for (let i = 0; i < 5; i++) await client.resolve(ref);
    // One token for push+pull on the repository; HEADs reuse it or one pull-scoped token.
    expect(reg.tokenRequests!() - before).toBeLessThanOrEqual(2);
    await client.close();
  });

  it('uploads large blobs in chunks and streams them back verified', async () => {
    const client = clientFor(reg, { chunkSize: 256 * 1024 });
    const ref = parseOciReference(`${reg.host}/chunked/blob:1`);
    const data = randomBytes(1024 * 1024 + 17);
    const blob = { digest: sha256Digest(data), size: data.length, open: () => Readable.from([data.subarray(0, 300_000), data.subarray(300_000)]) };
    expect(await client.pushBlob(ref, blob)).toBe('uploaded');
    const dir = await mkdtemp(join(tmpdir(), 'dl-'));
    await ingestBlob(client, ref, blob, join(dir, 'out'));
    expect((await readFile(join(dir, 'out'))).equals(data)).toBe(true);
    await client.close();
  });

  it('mounts a blob from another repository instead of uploading it', async () => {
    const client = clientFor(reg);
    const data = randomBytes(2048);
    const source = parseOciReference(`${reg.host}/mount/source:1`);
    const target = parseOciReference(`${reg.host}/mount/target:1`);
    await client.pushBlob(source, bufferBlob(data));
    expect(await client.pushBlob(target, bufferBlob(data), { mountFrom: 'mount/source' })).toBe('mounted');
    expect(await client.blobExists(target, sha256Digest(data))).toBe(true);
    await client.close();
  });

  it('refuses a tampered blob and writes nothing', async () => {
    const client = clientFor(reg);
    const data = Buffer.from('original content of the layer\n'.repeat(100));
    const ref = parseOciReference(`${reg.host}/tamper/blob:1`);
    const blob = bufferBlob(data);
    await client.pushBlob(ref, blob);
    const path = blobPath(reg, blob.digest);
    const tampered = Buffer.from(data);
    tampered[10] = tampered[10]! ^ 0xff;
    await writeFile(path, tampered);
    const dir = await mkdtemp(join(tmpdir(), 'dl-'));
    const err = await errorOf(ingestBlob(client, ref, blob, join(dir, 'out')));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toContain(blob.digest);
    expect(await readdir(dir)).toEqual([]);
    await client.close();
  });

  it('lists tags across Link pages', async () => {
    const client = clientFor(reg);
    const { manifest } = await pushSmallArtifact(client, `${reg.host}/paged/tags:t0`, Buffer.from('p'));
    const ref = parseOciReference(`${reg.host}/paged/tags:t0`);
    for (let i = 1; i < 7; i++) await client.pushManifest({ ...ref, tag: `t${i}` }, manifest, OCI_MANIFEST);
    expect((await client.listTags(ref, 2)).sort()).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
    await client.close();
  });

  it('finds referrers through the fallback tag schema (the registry has no referrers API)', async () => {
    const client = clientFor(reg);
    const { ref, desc } = await pushSmallArtifact(client, `${reg.host}/refs/subject:1`, Buffer.from('subject'));
    const sigConfig = bufferBlob(Buffer.from('{}'));
    await client.pushBlob(ref, sigConfig);
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: 'application/vnd.example.signature',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sigConfig.digest, size: sigConfig.size },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sigConfig.digest, size: sigConfig.size }],
        subject: desc,
      }),
    );
    const sigDesc = await client.pushManifest({ ...ref, tag: undefined, digest: sha256Digest(sig) } as never, sig, OCI_MANIFEST);
    const found = await client.referrers(ref, desc.digest);
    expect(found.map((d) => d.digest)).toEqual([sigDesc.digest]);
    expect(found[0]!.artifactType).toBe('application/vnd.example.signature');
    expect(await client.referrers(ref, desc.digest, 'application/other')).toEqual([]);
    expect(await client.listTags(ref)).toContain(desc.digest.replace(':', '-'));
    await client.close();
  });

  it('counts every exchange for metrics', async () => {
    const seen: string[] = [];
    const client = clientFor(reg, { onResponse: (i) => seen.push(`${i.method} ${i.status}`) });
    await client.ping(reg.host);
    expect(seen).toContain('GET 401');
    expect(seen).toContain('GET 200');
    await client.close();
  });
});

describe('connection failures', () => {
  it('names the host and suggests a fix when nothing listens', async () => {
    const client = new RegistryClient({ hostSettings: () => ({ plainHttp: true }), retry: { attempts: 1 } });
    const err = await errorOf(client.resolve(parseOciReference('127.0.0.1:9/x/y:1')));
    expect(err.code).toBe('NETWORK');
    expect(err.message).toContain('127.0.0.1:9');
    expect(err.hint).toMatch(/running/);
    await client.close();
  });

  it('explains a TLS failure against an untrusted certificate', async () => {
    const reg = await startRegistry({ tls: true });
    try {
      const client = new RegistryClient({ retry: { attempts: 1 } });
      const err = await errorOf(client.ping(reg.host));
      expect(err.code).toBe('NETWORK');
      expect(err.hint).toMatch(/--ca-file/);
      await client.close();
    } finally {
      await reg.stop();
    }
  });

  it('explains plain HTTP spoken to a TLS client', async () => {
    const reg = await startRegistry();
    try {
      const client = new RegistryClient({ retry: { attempts: 1 } });
      const err = await errorOf(client.ping(reg.host));
      expect(err.code).toBe('NETWORK');
      expect(err.hint).toMatch(/--plain-http/);
      await client.close();
    } finally {
      await reg.stop();
    }
  });
});



