/**
 * Keyless signing in CI with the built CLI: `repo push --sign` against the Sigstore stand-in's Fulcio
 * and Rekor served on loopback and a real registry, then `repo verify` with cosign's flags, and `repo
 * copy --with-signatures` carrying the bundle to another repository and through an OCI layout.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parsePolicy } from '../../src/signature/policy.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { loadTrustMaterial, verifyArtifact } from '../../src/signature/index.js';
import { cliEnv, ROOT, runCli, errorAsText } from '../helpers/cli.js';
import { pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { GITHUB_ISSUER, identityToken, SigstoreStandin } from './sigstore-standin.js';

const RULES = join(ROOT, 'test/fixtures/falco_rules.yaml');
const WORKFLOW = 'https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1.0.0';

let reg: TestRegistry;
let standin: SigstoreStandin;
let services: Awaited<ReturnType<SigstoreStandin['serve']>>;
let env: NodeJS.ProcessEnv;
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'keyless-sign-'));
  standin = await SigstoreStandin.start(dir);
  services = await standin.serve();
  tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${identityToken({ sub: WORKFLOW })}\n`);
  env = await cliEnv();
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [reg.host], trustedRoot: standin.trustedRootFile } }));
}, 60_000);

afterAll(async () => {
  await services?.close();
  await reg?.stop();
});

const sigstore = () => ['--fulcio-url', services.fulcioUrl, '--rekor-url', services.rekorUrl];
const push = (ref: string, ...extra: string[]) => runCli(['repo', 'push', ref, RULES, '--type', 'rulesfile', '--version', '1.0.0', '-o', 'json', ...extra], { env });
const verify = (ref: string, ...extra: string[]) => runCli(['repo', 'verify', ref, '-o', 'json', ...extra], { env });

describe('repo push --sign (keyless, built CLI)', () => {
  it('signs the pushed digest with a Fulcio certificate for the token\'s identity, logged in Rekor, as a v3 bundle referrer; repo verify checks it with cosign\'s flags', async () => {
    const pushed = await push(`${reg.host}/acme/rules:1.0.0`, '--sign', '--identity-token', tokenFile, ...sigstore());
    expect(pushed.stderr).toBe('');
    expect(pushed.code).toBe(0);
    const out = JSON.parse(pushed.stdout) as { digest: string; bundle: string; keylessSignature?: string };
    expect(out.bundle).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(out.keylessSignature).toBeUndefined();
    expect(services.requests).toEqual(expect.arrayContaining(['POST /api/v2/signingCert', 'POST /api/v1/log/entries']));
    // The referrer is laid out as cosign v3 writes it (specs/BUNDLE_SPEC.md of sigstore/cosign).
    const referrer = await fetch(`${reg.url}/v2/acme/rules/manifests/${out.bundle}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(await referrer.json()).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 },
      layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: expect.stringMatching(/^sha256:/), size: expect.any(Number) }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: out.digest, size: expect.any(Number) },
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1' },
    });

    const ok = await verify(`${reg.host}/acme/rules:1.0.0`, '--certificate-identity', WORKFLOW, '--certificate-oidc-issuer', GITHUB_ISSUER);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      digest: out.digest,
      verified: true,
      policies: [{ format: 'sigstore-bundle', where: `referrer ${out.bundle}`, signer: { identities: [WORKFLOW], issuer: GITHUB_ISSUER } }],
    });
    // The table names the policy, where the signature is and who made it.
    const table = await runCli(['repo', 'verify', `${reg.host}/acme/rules:1.0.0`, '--certificate-identity-regexp', '^https://github\\.com/acme/', '--certificate-oidc-issuer', GITHUB_ISSUER], { env });
    expect(table.stdout).toContain(`verified ${reg.host}/acme/rules@${out.digest}\n  signed keylessly by identity matching "^https://github\\.com/acme/", issuer "${GITHUB_ISSUER}" (the --certificate-* flags): referrer ${out.bundle}, by ${WORKFLOW} (issuer ${GITHUB_ISSUER})`);

    const other = await verify(`${reg.host}/acme/rules:1.0.0`, '--certificate-identity', 'https://github.com/acme/rules/.github/workflows/other.yml@refs/heads/main', '--certificate-oidc-issuer', GITHUB_ISSUER);
    expect(other.code).toBe(1);
    expect(errorAsText(other.stderr)).toContain(`error: ${reg.host}/acme/rules:1.0.0@${out.digest} is signed by "${WORKFLOW}" (issuer "${GITHUB_ISSUER}"), but its policy requires: signed keylessly by identity "https://github.com/acme/rules/.github/workflows/other.yml@refs/heads/main"`);
    // A keyless policy needs both who signs and who vouches for it, as cosign does.
    const half = await verify(`${reg.host}/acme/rules:1.0.0`, '--certificate-identity', WORKFLOW);
    expect(half.code).toBe(2);
    expect(errorAsText(half.stderr)).toContain('a keyless policy needs "certificate-oidc-issuer" or "certificate-oidc-issuer-regexp"');
  });

  it('with --signature-format v2 also writes the cosign v2 .sig layer, which verifies on its own', async () => {
    const r = await runCli(['repo', 'push', `${reg.host}/acme/rules-v2:1.0.0`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '-o', 'json', '--sign', '--signature-format', 'v2', ...sigstore()], {
      env: { ...env, SIGSTORE_ID_TOKEN: identityToken({ sub: WORKFLOW }) },
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { digest: string; bundle: string; keylessSignature: string };
    expect(out.keylessSignature).toBe(`${out.digest.replace(':', '-')}.sig`);
    // Read as cosign v2 (and falcoctl) read it: the .sig tag alone, no referrers.
    const client = pushClient();
    const repo = parseOciReference(`${reg.host}/acme/rules-v2`);
    const tagOnly = { fetchManifest: client.fetchManifest.bind(client), readBlob: client.readBlob.bind(client), openBlob: client.openBlob.bind(client), referrers: async () => [] };
    const trust = await loadTrustMaterial({ trustedRootFile: standin.trustedRootFile, cacheDir: dir });
    const policy = parsePolicy({ 'certificate-identity': WORKFLOW, 'certificate-oidc-issuer': GITHUB_ISSUER });
    await expect(verifyArtifact(tagOnly, repo, out.digest, policy, { trust })).resolves.toMatchObject({ format: 'cosign-v2', where: `tag ${out.keylessSignature}, layer 1` });
    await client.close();
  });

  it('without an identity token it pushes nothing and says where a token comes from', async () => {
    const r = await push(`${reg.host}/acme/no-token:1.0.0`, '--sign', ...sigstore());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('keyless signing needs an OIDC identity token, and none was found');
    expect(r.stderr).toContain('--identity-token FILE or SIGSTORE_ID_TOKEN');
    const pull = await runCli(['artifact', 'info', `${reg.host}/acme/no-token:1.0.0`], { env });
    expect(pull.code).toBe(1);
  });

  it('when Fulcio refuses, the tag does not move', async () => {
    const r = await push(`${reg.host}/acme/refused:1.0.0`, '--sign', '--identity-token', tokenFile, '--fulcio-url', `${services.fulcioUrl}/nowhere`, '--rekor-url', services.rekorUrl);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`keyless signing failed at Fulcio at ${services.fulcioUrl}/nowhere`);
    expect((await runCli(['artifact', 'info', `${reg.host}/acme/refused:1.0.0`], { env })).code).toBe(1);
  });
});

describe('repo copy --with-signatures carries the bundles', () => {
  it('to another repository and through an OCI layout directory, where they still verify', async () => {
    const pushed = JSON.parse((await push(`${reg.host}/acme/copied:1.0.0`, '--sign', '--identity-token', tokenFile, ...sigstore())).stdout) as { digest: string };
    const flags = ['--certificate-identity', WORKFLOW, '--certificate-oidc-issuer', GITHUB_ISSUER];
    const copied = await runCli(['repo', 'copy', `${reg.host}/acme/copied:1.0.0`, `${reg.host}/mirror/copied`, '--with-signatures'], { env });
    expect(copied.stderr).toBe('');
    expect(copied.stdout).toBe(`copied ${reg.host}/acme/copied:1.0.0 to ${reg.host}/mirror/copied:1.0.0@${pushed.digest}, with its signatures\n`);
    expect((await verify(`${reg.host}/mirror/copied:1.0.0`, ...flags)).code).toBe(0);

    const disk = await mkdtemp(join(dir, 'layout-'));
    expect((await runCli(['repo', 'copy', `${reg.host}/acme/copied:1.0.0`, `oci:${disk}`, '--with-signatures'], { env })).code).toBe(0);
    // A pull from the layout, offline, verifies the bundle found in the layout's referrers index.
    const dest = await mkdtemp(join(dir, 'dest-'));
    await writeFile(join(dir, 'copied-index.yaml'), stringify([{ name: 'copied', type: 'rulesfile', registry: 'registry.example', repository: 'acme/copied', description: 'd', keywords: ['k'], signature: { cosign: { 'certificate-identity': WORKFLOW, 'certificate-oidc-issuer': GITHUB_ISSUER } } }]));
    const withIndex = await cliEnv();
    await writeFile(withIndex.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [reg.host], trustedRoot: standin.trustedRootFile } }));
    expect((await runCli(['index', 'add', 'acme', join(dir, 'copied-index.yaml')], { env: withIndex })).code).toBe(0);
    // The index policy applies by the artifact's name (a layout is no indexed repository).
    const pulled = await runCli(['repo', 'pull', `oci:${disk}:1.0.0`, '--dest', dest, '-o', 'json', '--log-level', 'debug'], { env: withIndex });
    expect(pulled.code).toBe(0);
    const logged = pulled.stderr.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(logged).toContainEqual(expect.stringContaining(`signed as its policy requires (signed keylessly by identity "${WORKFLOW}", issuer "${GITHUB_ISSUER}" (index "acme", entry "copied", by the artifact's name))`));
    const unsignedDisk = await mkdtemp(join(dir, 'layout-'));
    expect((await runCli(['repo', 'copy', `${reg.host}/acme/copied:1.0.0`, `oci:${unsignedDisk}`], { env })).code).toBe(0);
    const refused = await runCli(['repo', 'pull', `oci:${unsignedDisk}:1.0.0`, '--dest', await mkdtemp(join(dir, 'dest-')), '-o', 'json'], { env: withIndex });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is not signed');
    // And back into a registry from the disk, bundles included.
    expect((await runCli(['repo', 'copy', `oci:${disk}:1.0.0`, `${reg.host}/gap/copied`, '--with-signatures'], { env })).code).toBe(0);
    expect((await verify(`${reg.host}/gap/copied:1.0.0`, ...flags)).code).toBe(0);
    // Without --with-signatures nothing signs the copy.
    expect((await runCli(['repo', 'copy', `${reg.host}/acme/copied:1.0.0`, `${reg.host}/bare/copied`], { env })).code).toBe(0);
    const bare = await verify(`${reg.host}/bare/copied:1.0.0`, ...flags);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain('is not signed');
  });
});
