/**
 * Keyless verification against a real registry and a local Sigstore (sigstore-standin.ts): artifacts
 * signed in cosign v2's format (the `.sig` tag) and v3's (a bundle referrer), then verified under an
 * index-style policy. Each refusal says which check failed, on what reference and digest, and what
 * the certificate had.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy, type SignaturePolicy } from '../../src/signature/policy.js';
import { parseOciReference, type OciReference } from '../../src/reference/reference.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { signDigest } from '../../src/signature/cosign.js';
import { loadTrustMaterial, SignatureError, verifyArtifact, type TrustRoot } from '../../src/signature/index.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { errorOf } from '../helpers/errors.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { addV2Layer, GITHUB_ISSUER, publicPem, SigstoreStandin, writeV2Manifest } from './sigstore-standin.js';
import { generateKeyPairSync } from 'node:crypto';

const WORKFLOW = 'https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.0.0';
const POLICY = parsePolicy({ 'certificate-identity-regexp': '^https://github.com/acme/rules/', 'certificate-oidc-issuer': GITHUB_ISSUER });
const FORMATS = ['signV2', 'signV3'] as const;

let reg: TestRegistry;
let client: RegistryClient;
let standin: SigstoreStandin;
let trust: TrustRoot;
let n = 0;

beforeAll(async () => {
  reg = await startRegistry();
  client = pushClient();
  const dir = await mkdtemp(join(tmpdir(), 'diginfractl-sigstore-'));
  standin = await SigstoreStandin.start(dir);
  trust = await loadTrustMaterial({ trustedRootFile: standin.trustedRootFile, cacheDir: dir });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

/** A freshly pushed rules artifact in its own repository: its reference and root digest. */
async function artifact(): Promise<{ repo: OciReference; digest: string }> {
  const ref = `${reg.host}/acme/rules-${++n}`;
  const digest = await pushRules(client, `${ref}:1.0.0`, '1.0.0', { content: `- rule: r${n}\n` });
  return { repo: parseOciReference(ref), digest };
}

async function refusal(repo: OciReference, digest: string, policy: SignaturePolicy = POLICY): Promise<SignatureError> {
  const err = await errorOf(verifyArtifact(client, repo, digest, policy, { trust }));
  expect(err).toBeInstanceOf(SignatureError);
  return err as SignatureError;
}

describe.each(FORMATS)('keyless, %s', (format) => {
  const expected = format === 'signV2' ? { format: 'cosign-v2', where: /^tag sha256-[0-9a-f]{64}\.sig, layer 1$/ } : { format: 'sigstore-bundle', where: /^referrer sha256:[0-9a-f]{64}$/ };

  it('verifies a signature by the identity and issuer the policy names', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: WORKFLOW });
    const verified = await verifyArtifact(client, repo, digest, POLICY, { trust });
    expect(verified).toMatchObject({
      reference: `${reg.host}/${repo.repository}`,
      digest,
      format: expected.format,
      where: expect.stringMatching(expected.where),
      signer: { identities: [WORKFLOW], issuer: GITHUB_ISSUER },
    });
    expect(Date.parse(verified.integratedTime!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses another identity with SIGNATURE_IDENTITY, naming what the policy wants and what the certificate had', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: 'https://github.com/mallory/rules/.github/workflows/release.yml@refs/heads/main' });
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_IDENTITY');
    expect(err.message).toContain(`${reg.host}/${repo.repository}@${digest} is signed by "https://github.com/mallory/rules/.github/workflows/release.yml@refs/heads/main" (issuer "${GITHUB_ISSUER}")`);
    expect(err.message).toContain(`its policy requires: signed keylessly by identity matching "^https://github.com/acme/rules/", issuer "${GITHUB_ISSUER}"`);
    expect(err.rejected[0]!.why).toBe('identity "https://github.com/mallory/rules/.github/workflows/release.yml@refs/heads/main" does not match "^https://github.com/acme/rules/"');
  });

  it('refuses another issuer with SIGNATURE_IDENTITY', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: WORKFLOW, issuer: 'https://gitlab.example' });
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_IDENTITY');
    expect(err.rejected[0]!.why).toBe(`issuer "https://gitlab.example" is not "${GITHUB_ISSUER}"`);
  });

  it('refuses a certificate that had expired when the log integrated the signature', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: WORKFLOW, logDelayMs: 3_600_000 });
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected[0]!.why).toMatch(
      /^its certificate does not verify: .*\(it was valid from \S+ to \S+; the log integrated the signature at \S+\)$/,
    );
  });

  it('refuses a log entry signed by a log the trust root does not name', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: WORKFLOW, untrustedLog: true });
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.message).toMatch(/its transparency-log (entry|inclusion proof|checkpoint) does not verify/);
  });

  it('refuses a valid signature of another digest, naming that digest', async () => {
    const { repo, digest } = await artifact();
    const other = `sha256:${'7'.repeat(64)}`;
    await standin[format](client, repo, digest, { identity: WORKFLOW, payloadDigest: other });
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected[0]!.why).toBe(`it signs ${other}, another digest`);
  });

  it('refuses an artifact with no signature at all with SIGNATURE_MISSING, naming the tag asked for and the digest', async () => {
    const { repo, digest } = await artifact();
    const err = await refusal({ ...repo, tag: '1.0.0' }, digest);
    expect(err.code).toBe('SIGNATURE_MISSING');
    expect(err.message).toBe(
      `${reg.host}/${repo.repository}:1.0.0@${digest} is not signed: no cosign signature at tag ${digest.replace(':', '-')}.sig and no Sigstore bundle among its referrers; its policy requires: signed keylessly by identity matching "^https://github.com/acme/rules/", issuer "${GITHUB_ISSUER}"`,
    );
  });

  it('accepts the artifact when one of several signatures satisfies the policy', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: 'https://github.com/mallory/rules/.github/workflows/x.yml@refs/heads/main' });
    await standin[format](client, repo, digest, { identity: WORKFLOW });
    await expect(verifyArtifact(client, repo, digest, POLICY, { trust })).resolves.toMatchObject({ signer: { identities: [WORKFLOW] } });
  });

  it("checks the GitHub workflow claims of the certificate when the policy names them", async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: WORKFLOW, workflow: { trigger: 'push', repository: 'acme/rules', ref: 'refs/tags/v1.0.0' } });
    const claims = { 'certificate-github-workflow-repository': 'acme/rules', 'certificate-github-workflow-trigger': 'push' };
    await expect(verifyArtifact(client, repo, digest, parsePolicy({ ...claims, 'certificate-identity': WORKFLOW, 'certificate-oidc-issuer': GITHUB_ISSUER }), { trust })).resolves.toBeDefined();
    const err = await refusal(repo, digest, parsePolicy({ 'certificate-github-workflow-ref': 'refs/heads/main', 'certificate-github-workflow-name': 'Release', 'certificate-identity': WORKFLOW, 'certificate-oidc-issuer': GITHUB_ISSUER }));
    expect(err.code).toBe('SIGNATURE_IDENTITY');
    expect(err.rejected[0]!.why).toBe('GitHub workflow name is absent, not "Release"; GitHub workflow ref "refs/tags/v1.0.0", not "refs/heads/main"');
  });

  it('refuses under ignore-tlog when no timestamp authority dates the signature', async () => {
    const { repo, digest } = await artifact();
    await standin[format](client, repo, digest, { identity: WORKFLOW });
    const err = await refusal(repo, digest, parsePolicy({ 'certificate-identity': WORKFLOW, 'certificate-oidc-issuer': GITHUB_ISSUER, 'ignore-tlog': true }));
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected[0]!.why).toContain('the policy sets ignore-tlog, and it carries no RFC 3161 timestamp');
  });
});

describe('sources without a referrers lookup (an OCI layout)', () => {
  it('find v3 bundles through the tag-schema fallback themselves', async () => {
    const { repo, digest } = await artifact();
    await standin.signV3(client, repo, digest, { identity: WORKFLOW });
    const layoutLike = { fetchManifest: client.fetchManifest.bind(client), readBlob: client.readBlob.bind(client), openBlob: client.openBlob.bind(client) };
    await expect(verifyArtifact(layoutLike, repo, digest, POLICY, { trust })).resolves.toMatchObject({ format: 'sigstore-bundle' });
  });
});

describe('a referrer listed for another digest', () => {
  it('does not count: the referrer manifest itself must name the digest as its subject', async () => {
    const { repo, digest: signed } = await artifact();
    await standin.signV3(client, repo, signed, { identity: WORKFLOW });
    const fallback = (tag: string) => ({ registry: repo.registry, repository: repo.repository, tag });
    const index = await client.fetchManifest(fallback(signed.replace(':', '-')));
    // Another version in the same repository, whose fallback tag index is rewritten to list the first one's bundle.
    const other = await pushRules(client, `${reg.host}/${repo.repository}:2.0.0`, '2.0.0', { content: '- rule: other\n' });
    await client.pushManifest(fallback(other.replace(':', '-')), index.bytes, index.descriptor.mediaType);
    const err = await refusal(repo, other);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected[0]!.why).toBe(`its subject is ${signed}, not ${other}`);
  });
});

describe('a tampered cosign v2 signature layer', () => {
  async function signedLayer(): Promise<{ repo: OciReference; digest: string; at: OciReference; layer: { digest: string; size: number; annotations: Record<string, string> } }> {
    const { repo, digest } = await artifact();
    await standin.signV2(client, repo, digest, { identity: WORKFLOW });
    const at = { registry: repo.registry, repository: repo.repository, tag: `${digest.replace(':', '-')}.sig` };
    const layer = ((await client.fetchManifest(at)).json as { layers: { digest: string; size: number; annotations: Record<string, string> }[] }).layers[0]!;
    return { repo, digest, at, layer };
  }

  it('is refused when its signature annotation was changed', async () => {
    const { repo, digest, at, layer } = await signedLayer();
    const sig = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64');
    sig[sig.length - 1]! ^= 1;
    await writeV2Manifest(client, at, [{ ...layer, annotations: { ...layer.annotations, 'dev.cosignproject.cosign/signature': sig.toString('base64') } }]);
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected[0]!.why).toMatch(/does not verify/);
  });

  it('is refused when its payload was swapped for another one naming the same digest', async () => {
    const { repo, digest, at, layer } = await signedLayer();
    // Same digest, another docker-reference: the payload check alone would pass; the signature must not.
    const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': 'evil.example/x' }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
    await writeV2Manifest(client, at, []);
    await addV2Layer(client, repo, digest, payload, layer.annotations);
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected[0]!.why).toMatch(/^its (transparency-log entry|signature) does not verify/);
  });

  it('only counts a layer made with a key pair for a keyed policy', async () => {
    const { repo, digest } = await artifact();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await signDigest(client, repo, digest, privateKey);
    const err = await refusal(repo, digest);
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.rejected).toEqual([{ where: `tag ${digest.replace(':', '-')}.sig, layer 1`, why: 'it was made with a key pair, not a Fulcio certificate' }]);
    await expect(verifyArtifact(client, repo, digest, parsePolicy({ key: publicPem(privateKey) }))).resolves.toMatchObject({ format: 'key' });
  });
});

describe('keyed policies', () => {
  it('verify with the existing key-pair code; another key is refused with SIGNATURE_INVALID', async () => {
    const { repo, digest } = await artifact();
    const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await signDigest(client, repo, digest, signer.privateKey);
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const err = await refusal(repo, digest, parsePolicy({ key: other }));
    expect(err.code).toBe('SIGNATURE_INVALID');
    expect(err.message).toContain('no cosign signature verifies with the verification key');
    expect(err.message).toContain('its policy requires: signed with the inline public key');
    const fetched: string[] = [];
    const fetchKey = async (url: string) => (fetched.push(url), publicPem(signer.privateKey));
    await expect(verifyArtifact(client, repo, digest, parsePolicy({ key: 'https://keys.example/cosign.pub' }), { fetchKey })).resolves.toMatchObject({ format: 'key' });
    expect(fetched).toEqual(['https://keys.example/cosign.pub']);
  });

  it('refuses an unsigned artifact with SIGNATURE_MISSING', async () => {
    const { repo, digest } = await artifact();
    const key = publicPem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    expect((await refusal(repo, digest, parsePolicy({ key }))).code).toBe('SIGNATURE_MISSING');
  });
});

describe('the real index policy', () => {
  it("verifies a falcosecurity-style release signature under the real index entry's policy", async () => {
    const index = await readFile(join(import.meta.dirname, '../fixtures/falcosecurity-index.yaml'), 'utf8');
    const { parseIndexText } = await import('../../src/indexes/parse.js');
    const { policyOf } = await import('../../src/signature/policy.js');
    const cloudtrail = (await parseIndexText(index, 'falcosecurity')).find((e) => e.name === 'cloudtrail')!;
    const policy = policyOf(cloudtrail, 'falcosecurity')!;
    const { repo, digest } = await artifact();
    await standin.signV3(client, repo, digest, { identity: 'https://github.com/falcosecurity/plugins/.github/workflows/reusable_publish_oci_artifacts.yaml@refs/heads/main' });
    await expect(verifyArtifact(client, repo, digest, policy, { trust })).resolves.toMatchObject({ format: 'sigstore-bundle' });
    const { repo: unsignedRepo, digest: unsigned } = await artifact();
    expect((await refusal(unsignedRepo, unsigned, policy)).code).toBe('SIGNATURE_MISSING');
  });
});
