/**
 * Trust roots: the production path (a real public-good Sigstore bundle verified offline with the
 * root @sigstore/tuf ships), a TUF refresh from a loopback TUF repository with its cached copy, a
 * failed refresh that warns and falls back, and trusted_root.json files for private deployments.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { MetadataKind, Metadata, Signature } from '@tufjs/models';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy, type KeylessPolicy } from '../../src/signature/policy.js';
import { COSIGN_SIGN_PREDICATE, verifyBundle, type PayloadExpectation } from '../../src/signature/keyless.js';
import { loadTrustMaterial } from '../../src/signature/trust.js';
import { ROOT } from '../helpers/cli.js';
import { errorOf } from '../helpers/errors.js';
import { SigstoreStandin } from './sigstore-standin.js';

const FIXTURE = join(ROOT, 'test/fixtures/sigstore/sigstore-3.1.0.sigstore.json');
/** npm's `dist.integrity` of sigstore@3.1.0 (sha512-ZpzWAFHI...), in hex: the tarball the provenance is about. */
const TARBALL_SHA512 = 'sha512:669cd60051c816ac85139e9d5ea817fc3903459773fab45c8e8224fd1414e085f4c220afd65f12ed9ad70c770273eb9a7feea8ef0de1da5de0e86606e5328df5';
const SLSA = 'https://slsa.dev/provenance/v1';
/** A keyless policy from a cosign block (the blocks here are all keyless). */
const keyless = (cosign: Record<string, string>) => parsePolicy(cosign) as KeylessPolicy;
const SIGSTORE_JS = keyless({ 'certificate-identity-regexp': '^https://github.com/sigstore/sigstore-js/', 'certificate-oidc-issuer': 'https://token.actions.githubusercontent.com' });
const WANT: PayloadExpectation = { kind: 'in-toto', digest: TARBALL_SHA512, predicateType: SLSA };

const temp = () => mkdtemp(join(tmpdir(), 'diginfractl-trust-'));
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function productionBundle(edit?: (json: Record<string, any>) => void) {
  const json = JSON.parse(await readFile(FIXTURE, 'utf8'));
  edit?.(json);
  return bundleFromJSON(json);
}

describe('the production trust path, offline', () => {
  it("verifies npm's provenance of sigstore 3.1.0 with the public-good root shipped with @sigstore/tuf", async () => {
    const trust = await loadTrustMaterial({ cacheDir: await temp(), offline: true });
    expect(trust).toMatchObject({ source: 'the Sigstore public-good root shipped with diginfractl', ctlogs: expect.any(Number) });
    expect(trust.warning).toBeUndefined();
    const verdict = await verifyBundle(await productionBundle(), undefined, WANT, SIGSTORE_JS, trust);
    expect(verdict).toEqual({
      ok: true,
      claims: {
        identities: ['https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main'],
        issuer: 'https://token.actions.githubusercontent.com',
        githubWorkflow: { trigger: 'push', sha: '06cd267cbdc2eeaa04294995622db9f6ad2fa7cf', name: 'Release', repository: 'sigstore/sigstore-js', ref: 'refs/heads/main' },
      },
      integratedTime: new Date('2025-02-04T20:35:47Z'),
    });
  });

  it('refuses the same bundle for another signer, another artifact, a tampered envelope, or under another trust root', async () => {
    const trust = await loadTrustMaterial({ cacheDir: await temp(), offline: true });
    const other = keyless({ 'certificate-identity-regexp': '^https://github.com/acme/', 'certificate-oidc-issuer': 'https://token.actions.githubusercontent.com' });
    expect(await verifyBundle(await productionBundle(), undefined, WANT, other, trust)).toMatchObject({ ok: false, stage: 'identity' });
    expect(await verifyBundle(await productionBundle(), undefined, { ...WANT, digest: `sha512:${'0'.repeat(128)}` }, SIGSTORE_JS, trust)).toEqual({
      ok: false,
      stage: 'invalid',
      why: `it signs ${TARBALL_SHA512}, another digest`,
    });
    expect(await verifyBundle(await productionBundle(), undefined, { ...WANT, predicateType: COSIGN_SIGN_PREDICATE }, SIGSTORE_JS, trust)).toMatchObject({
      why: `it attests "${SLSA}", not a signature (${COSIGN_SIGN_PREDICATE})`,
    });
    const tampered = await productionBundle((json) => {
      const statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload, 'base64').toString());
      statement.subject[0].digest.sha512 = '0'.repeat(128);
      json.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    });
    expect(await verifyBundle(tampered, undefined, WANT, SIGSTORE_JS, trust)).toMatchObject({ ok: false, stage: 'invalid', why: expect.stringMatching(/does not verify/) });
    const standin = await SigstoreStandin.start(await temp());
    const private_ = await loadTrustMaterial({ trustedRootFile: standin.trustedRootFile, cacheDir: await temp() });
    expect(await verifyBundle(await productionBundle(), undefined, WANT, SIGSTORE_JS, private_)).toMatchObject({ ok: false, why: expect.stringMatching(/^its (certificate|transparency-log entry) does not verify/) });
  });
});

/** A TUF repository on loopback serving `target` as trusted_root.json, signed with its own ed25519 key. */
async function tufRepository(target: Buffer): Promise<{ url: string; rootJson: Buffer; requests: string[] }> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicHex = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex');
  const key = { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: publicHex } };
  const keyid = createHash('sha256').update(JSON.stringify(key)).digest('hex');
  const expires = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const role = { keyids: [keyid], threshold: 1 };
  const signed = (kind: MetadataKind, body: object): Buffer => {
    const metadata = Metadata.fromJSON(kind as MetadataKind.Root, { signed: { _type: kind, spec_version: '1.0.31', version: 1, expires, ...body }, signatures: [] });
    metadata.sign((bytes) => new Signature({ keyID: keyid, sig: sign(null, bytes, privateKey).toString('hex') }));
    return Buffer.from(JSON.stringify(metadata.toJSON()));
  };
  const rootJson = signed(MetadataKind.Root, { consistent_snapshot: false, keys: { [keyid]: key }, roles: { root: role, targets: role, snapshot: role, timestamp: role } });
  const targets = signed(MetadataKind.Targets, { targets: { 'trusted_root.json': { length: target.length, hashes: { sha256: createHash('sha256').update(target).digest('hex') } } } });
  const snapshot = signed(MetadataKind.Snapshot, { meta: { 'targets.json': { version: 1 } } });
  const timestamp = signed(MetadataKind.Timestamp, { meta: { 'snapshot.json': { version: 1 } } });
  const files: Record<string, Buffer> = { '/timestamp.json': timestamp, '/snapshot.json': snapshot, '/targets.json': targets, '/targets/trusted_root.json': target };
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url!);
    const body = files[req.url!];
    res.writeHead(body ? 200 : 404).end(body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, rootJson, requests };
}

/** Puts a TUF repository's first root where @sigstore/tuf looks for it (it ships one only for the public-good repository). */
async function seedTufRoot(cacheDir: string, url: string, rootJson: Buffer): Promise<void> {
  const dir = join(cacheDir, 'tuf', encodeURIComponent(new URL(url).host));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'root.json'), rootJson);
}

describe('refreshing the root through TUF', () => {
  let standinRoot: Buffer;
  beforeAll(async () => {
    standinRoot = await readFile((await SigstoreStandin.start(await temp())).trustedRootFile);
  });

  it('refreshes, keeps a copy in the cache dir, and answers from unexpired cached metadata without the network', async () => {
    const cacheDir = await temp();
    const repo = await tufRepository(standinRoot);
    await seedTufRoot(cacheDir, repo.url, repo.rootJson);
    const fresh = await loadTrustMaterial({ cacheDir, tufMirror: repo.url });
    expect(fresh).toMatchObject({ source: `the Sigstore trusted root refreshed through TUF from ${repo.url}`, ctlogs: 1 });
    expect(fresh.warning).toBeUndefined();
    expect(repo.requests).toEqual(['/2.root.json', '/timestamp.json', '/snapshot.json', '/targets.json', '/targets/trusted_root.json']);
    expect(JSON.parse(await readFile(join(cacheDir, 'trusted_root.json'), 'utf8'))).toMatchObject({ mediaType: JSON.parse(standinRoot.toString()).mediaType });
    repo.requests.length = 0;
    expect((await loadTrustMaterial({ cacheDir, tufMirror: repo.url })).warning).toBeUndefined();
    expect(repo.requests).toEqual([]);
    expect(await loadTrustMaterial({ cacheDir, offline: true })).toMatchObject({ source: `the Sigstore trusted root cached in ${join(cacheDir, 'trusted_root.json')}` });
  });

  it('warns, and verifies with the cached or shipped root, when the TUF repository cannot be reached', async () => {
    const cacheDir = await temp();
    const repo = await tufRepository(standinRoot);
    await seedTufRoot(cacheDir, repo.url, repo.rootJson);
    const down = createServer((_req, res) => res.writeHead(503).end());
    servers.push(down);
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const mirror = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
    await seedTufRoot(cacheDir, mirror, repo.rootJson);
    const shipped = await loadTrustMaterial({ cacheDir, tufMirror: mirror, timeoutMs: 1000 });
    expect(shipped.source).toBe('the Sigstore public-good root shipped with diginfractl');
    expect(shipped.warning).toMatch(new RegExp(`^the Sigstore trusted root could not be refreshed from ${mirror} \\(.+\\); verifying with the root shipped with diginfractl$`));
    await loadTrustMaterial({ cacheDir, tufMirror: repo.url });
    const cached = await loadTrustMaterial({ cacheDir, tufMirror: mirror, timeoutMs: 1000 });
    expect(cached.warning).toMatch(/; verifying with the root cached in .*trusted_root\.json$/);
    expect(cached.ctlogs).toBe(1);
  });
});

describe('a trusted_root.json file (private deployments, air-gapped nodes)', () => {
  it('is used as is, without TUF', async () => {
    const standin = await SigstoreStandin.start(await temp());
    const trust = await loadTrustMaterial({ trustedRootFile: standin.trustedRootFile, cacheDir: await temp() });
    expect(trust).toMatchObject({ source: `the Sigstore trusted root ${standin.trustedRootFile}`, ctlogs: 1 });
  });

  it.each([
    ['not json', /is not JSON/],
    [JSON.stringify({ mediaType: 'application/json' }), /its mediaType is "application\/json", not application\/vnd\.dev\.sigstore\.trustedroot/],
    [JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [] }), /it names no certificate authority/],
  ])('refuses %s with CONFIG_INVALID', async (content, message) => {
    const file = join(await temp(), 'trusted_root.json');
    await writeFile(file, content);
    const err = await errorOf(loadTrustMaterial({ trustedRootFile: file, cacheDir: await temp() }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(message);
    expect(err.message).toContain(file);
  });

  it('names a file that is not there', async () => {
    const err = await errorOf(loadTrustMaterial({ trustedRootFile: '/nonexistent/trusted_root.json', cacheDir: await temp() }));
    expect(err.message).toMatch(/^cannot read the Sigstore trusted root \/nonexistent\/trusted_root.json: ENOENT/);
  });
});
