/**
 * cosign signatures with a key pair: the format (cosign's SIGNATURE_SPEC), signing on push, and
 * verification in `repo pull`, `artifact install` and `artifact follow` against a real registry. A
 * signature made with openssl (no diginfractl code) stands for one made by cosign itself: same payload,
 * same scheme (ECDSA P-256, SHA-256, DER, base64), same place.
 */
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPrivateKey, loadPublicKeys, signatureTag, signedDigest, simpleSigningPayload } from '../../src/signature/cosign.js';
import { pushArtifact } from '../../src/artifact/push.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { cliEnv, ROOT, runCli } from '../helpers/cli.js';
import { pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { errorThrownBy } from '../helpers/errors.js';

const RULES = join(ROOT, 'test/fixtures/falco_rules.yaml');

async function keyPair(dir: string, name: string): Promise<{ priv: string; pub: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const priv = join(dir, `${name}.key.pem`);
  const pub = join(dir, `${name}.pub`);
  await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}

/** What `fn` throws (it must throw). */
describe('cosign format', () => {
  const digest = `sha256:${'ab'.repeat(32)}`;

  it("puts a digest's signatures at cosign's tag, and writes cosign's payload", () => {
    expect(signatureTag(digest)).toBe(`sha256-${'ab'.repeat(32)}.sig`);
    expect(() => signatureTag('sha512:abc')).toThrow(/not a sha256 digest/);
    expect(simpleSigningPayload({ registry: 'ghcr.io', repository: 'acme/rules' }, digest).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"ghcr.io/acme/rules"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`,
    );
  });

  it('reads payloads as cosign does: keys in any case, the cosign type required', () => {
    expect(signedDigest(Buffer.from(`{"Critical":{"Image":{"Docker-manifest-digest":"${digest}"},"Type":"cosign container image signature"}}`))).toEqual({ digest });
    expect(signedDigest(Buffer.from(`{"critical":{"image":{"docker-manifest-digest":"${digest}"},"type":"atomic container signature"}}`))).toEqual({
      why: `its payload's critical.type is not "cosign container image signature"`,
    });
    expect(signedDigest(Buffer.from('not json'))).toEqual({ why: 'its payload is not JSON' });
  });

  it('names a bad key file and says what to give instead', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keys-'));
    await writeFile(join(dir, 'garbage.pub'), 'hello');
    expect(errorThrownBy(() => loadPublicKeys([join(dir, 'garbage.pub')]))).toMatchObject({ code: 'USAGE', message: expect.stringContaining(`${join(dir, 'garbage.pub')} is not a PEM public key`) });
    expect(errorThrownBy(() => loadPublicKeys([join(dir, 'missing.pub')]))).toMatchObject({ code: 'USAGE', message: expect.stringContaining('cannot read the verification key') });
    // A private key is not a verification key (it would end up in a ConfigMap); other key types are refused by name.
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    await writeFile(join(dir, 'private.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(join(dir, 'x25519.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(dir, 'x25519.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(errorThrownBy(() => loadPublicKeys([join(dir, 'private.pem')])).message).toContain('holds a private key; a verification key is the public half');
    expect(errorThrownBy(() => loadPublicKeys([join(dir, 'x25519.pub')])).message).toContain('is a x25519 key; cosign signatures use ECDSA (P-256), RSA or Ed25519 keys');
    expect(errorThrownBy(() => loadPrivateKey(join(dir, 'x25519.pem'))).message).toContain('is a x25519 key');
    await writeFile(join(dir, 'cosign.key'), '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n');
    const err = errorThrownBy(() => loadPrivateKey(join(dir, 'cosign.key')));
    expect(err).toMatchObject({ code: 'USAGE', message: expect.stringContaining("cosign's encrypted key format") });
    expect(err.hint).toContain('cosign sign --key');
  });
});

describe('signatures end to end (built CLI, real registry)', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  let alice: { priv: string; pub: string };
  let mallory: { priv: string; pub: string };
  const plain = ['--plain-http'];

  beforeAll(async () => {
    reg = await startRegistry();
    env = await cliEnv();
    dir = await mkdtemp(join(tmpdir(), 'cosign-e2e-'));
    alice = await keyPair(dir, 'alice');
    mallory = await keyPair(dir, 'mallory');
  });
  afterAll(async () => {
    await reg?.stop();
  });

  const push = (ref: string, file: string, ...extra: string[]) => runCli(['repo', 'push', ref, file, '--type', 'rulesfile', '--version', '1.0.0', ...plain, ...extra], { env });
  const pull = async (ref: string, ...extra: string[]) => {
    const dest = await mkdtemp(join(dir, 'pull-'));
    const r = await runCli(['repo', 'pull', ref, '--dest', dest, ...plain, ...extra], { env });
    return { ...r, files: await readdir(dest) };
  };

  it('push --sign-key signs the pushed digest; pull --verify-key accepts it, and refuses other keys and unsigned artifacts, writing nothing', async () => {
    const signed = await push(`${reg.host}/rules/signed:1.0.0`, RULES, '--sign-key', alice.priv, '-o', 'json');
    expect(signed.stderr).toBe('');
    const out = JSON.parse(signed.stdout) as { digest: string; signature: string };
    expect(out.signature).toBe(signatureTag(out.digest));

    const ok = await pull(`${reg.host}/rules/signed:1.0.0`, '--verify-key', alice.pub);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.files).toEqual(['falco_rules.yaml']);

    const wrongKey = await pull(`${reg.host}/rules/signed:1.0.0`, '--verify-key', mallory.pub);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain(`error: ${reg.host}/rules/signed@${out.digest}: no cosign signature verifies with the verification key (one was made by a key not among the verification keys)`);
    expect(wrongKey.files).toEqual([]);

    // Any of several keys will do.
    expect((await pull(`${reg.host}/rules/signed:1.0.0`, '--verify-key', mallory.pub, '--verify-key', alice.pub)).code).toBe(0);

    expect((await push(`${reg.host}/rules/unsigned:1.0.0`, RULES)).code).toBe(0);
    const unsigned = await pull(`${reg.host}/rules/unsigned:1.0.0`, '--verify-key', alice.pub);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/error: .*\/rules\/unsigned@sha256:[a-f0-9]{64} is not signed: no cosign signature at tag sha256-[a-f0-9]{64}\.sig/);
    expect(unsigned.files).toEqual([]);
    // Without a key, nothing is checked (as before).
    expect((await pull(`${reg.host}/rules/unsigned:1.0.0`)).code).toBe(0);

    // artifact info counts the signatures, and lists no signature tag among the versions.
    const info = await runCli(['artifact', 'info', `${reg.host}/rules/signed:1.0.0`, ...plain], { env });
    expect(info.stdout).toMatch(new RegExp(`^SIGNATURES\\s+1 cosign signature \\(1 with a key pair\\) at tag ${signatureTag(out.digest)}; check with repo verify --verify-key$`, 'm'));
    expect(info.stdout).toMatch(/^TAGS\s+1\.0\.0$/m);
    const [unsignedInfo] = JSON.parse((await runCli(['artifact', 'info', `${reg.host}/rules/unsigned:1.0.0`, '-o', 'json', ...plain], { env })).stdout) as { signatures: unknown }[];
    expect(unsignedInfo!.signatures).toMatchObject({ keyPair: 0, keyless: 0 });

    // repo verify says the same without pulling.
    const verified = await runCli(['repo', 'verify', `${reg.host}/rules/signed:1.0.0`, '--verify-key', alice.pub, ...plain], { env });
    expect(verified.stdout).toBe(`verified ${reg.host}/rules/signed@${out.digest}: a cosign signature checks out with the given key(s)\n`);
    expect(verified.code).toBe(0);
    const notVerified = await runCli(['repo', 'verify', `${reg.host}/rules/signed@${out.digest}`, '--verify-key', mallory.pub, ...plain], { env });
    expect(notVerified.code).toBe(1);
    expect(notVerified.stderr).toContain('no cosign signature verifies');
    const noKey = await runCli(['repo', 'verify', `${reg.host}/rules/signed:1.0.0`, ...plain], { env });
    // Without flags the index policy for the reference applies; none does here, and no key is configured.
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain(`error: no signature policy applies to ${reg.host}/rules/signed:1.0.0`);
  });

  it('pushArtifact calls beforeTags (where push --sign-key signs) before any tag points at the new version', async () => {
    const client = pushClient();
    const ref = parseOciReference(`${reg.host}/rules/ordered:1.0.0`);
    let tagAtSigning: string | undefined;
    const res = await pushArtifact(client, ref, {
      type: 'rulesfile',
      version: '1.0.0',
      files: [RULES],
      beforeTags: async (pushed) => {
        tagAtSigning = await client.resolve(ref).then((d) => d.digest, (err: { code?: string }) => err.code);
        expect(pushed.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
      },
    });
    expect(tagAtSigning).toBe('NOT_FOUND');
    expect((await client.resolve(ref)).digest).toBe(res.ref.digest);
    await client.close();
  });

  it('keeps earlier signatures when another key signs, and refuses a signature copied from another digest', async () => {
    const ref = `${reg.host}/rules/twice:1.0.0`;
    const first = JSON.parse((await push(ref, RULES, '--sign-key', alice.priv, '-o', 'json')).stdout) as { digest: string };
    const second = await runCli(['repo', 'sign', ref, '--key', mallory.priv, ...plain], { env });
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe(`signed ${reg.host}/rules/twice@${first.digest}\n  signature: ${reg.host}/rules/twice:${signatureTag(first.digest)}\n`);
    // Signing again with a key replaces that key's signature: two signers, two layers.
    expect((await runCli(['repo', 'sign', ref, '--key', alice.priv, ...plain], { env })).code).toBe(0);
    const sig = await (await fetch(`${reg.url}/v2/rules/twice/manifests/${signatureTag(first.digest)}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json() as { layers: unknown[] };
    expect(sig.layers).toHaveLength(2);
    expect((await pull(ref, '--verify-key', alice.pub)).code).toBe(0);
    expect((await pull(ref, '--verify-key', mallory.pub)).code).toBe(0);

    // Another artifact, whose signature tag holds the (valid) signature of the first one.
    const other = `${reg.host}/rules/twice:2.0.0`;
    const otherFile = join(dir, 'other_rules.yaml');
    await writeFile(otherFile, '- list: other\n  items: []\n');
    const pushed = JSON.parse((await runCli(['repo', 'push', other, otherFile, '--type', 'rulesfile', '--version', '2.0.0', ...plain, '-o', 'json'], { env })).stdout) as { digest: string };
    const sigManifest = await fetch(`${reg.url}/v2/rules/twice/manifests/${signatureTag(first.digest)}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const put = await fetch(`${reg.url}/v2/rules/twice/manifests/${signatureTag(pushed.digest)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: Buffer.from(await sigManifest.arrayBuffer()),
    });
    expect(put.status).toBe(201);
    const replayed = await pull(other, '--verify-key', alice.pub);
    expect(replayed.code).toBe(1);
    expect(replayed.stderr).toContain(`one signs ${first.digest}, another digest`);
    expect(replayed.files).toEqual([]);
  });

  it("verifies a signature made without diginfractl (openssl, in cosign's layout): the scheme is cosign's", async () => {
    const ref = `${reg.host}/rules/external:1.0.0`;
    const { digest } = JSON.parse((await push(ref, RULES, '-o', 'json')).stdout) as { digest: string };
    const payload = simpleSigningPayload({ registry: reg.host, repository: 'rules/external' }, digest);
    const payloadFile = join(dir, 'payload.json');
    await writeFile(payloadFile, payload);
    const signature = execFileSync('openssl', ['dgst', '-sha256', '-sign', alice.priv, payloadFile]).toString('base64');
    const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const config = Buffer.from('{}');
    const oversized = Buffer.alloc(70 * 1024, 'x'); // not a payload: more than the 64 KiB one may be
    for (const blob of [payload, config, oversized]) {
      const start = await fetch(`${reg.url}/v2/rules/external/blobs/uploads/`, { method: 'POST' });
      const location = new URL(start.headers.get('location')!, reg.url);
      location.searchParams.set('digest', sha(blob));
      expect((await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob })).status).toBe(201);
    }
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [
        // A layer that cannot be read as a payload comes first: it must not hide the good one.
        { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha(oversized), size: oversized.length, annotations: { 'dev.cosignproject.cosign/signature': signature } },
        // A keyless one (a Fulcio certificate instead of a key): counted, never verified here.
        { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha(payload), size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==', 'dev.sigstore.cosign/certificate': '-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n' } },
        { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: sha(payload), size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': signature } },
      ],
    };
    const put = await fetch(`${reg.url}/v2/rules/external/manifests/${signatureTag(digest)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: JSON.stringify(manifest),
    });
    expect(put.status).toBe(201);
    const ok = await pull(ref, '--verify-key', alice.pub);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const [info] = JSON.parse((await runCli(['artifact', 'info', ref, '-o', 'json', ...plain], { env })).stdout) as { signatures: unknown }[];
    expect(info!.signatures).toEqual({ tag: signatureTag(digest), keyPair: 2, keyless: 1 });
  });

  it('artifact install verifies every artifact, dependencies included, before writing anything; registry.cosignKeys sets the keys', async () => {
    const src = join(dir, 'plugin-src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'libk8saudit.so'), '\x7fELF k8saudit\n', { mode: 0o755 });
    expect((await runCli(['repo', 'push', `${reg.host}/acme/k8saudit`, join(src, 'libk8saudit.so'), '--type', 'plugin', '--version', '0.7.0', ...plain], { env })).code).toBe(0);
    const rules = `${reg.host}/acme/k8saudit-rules:1.0.0`;
    expect((await runCli(['repo', 'push', rules, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--depends-on', 'k8saudit:0.7.0', '--sign-key', alice.priv, ...plain], { env })).code).toBe(0);

    const node = await mkdtemp(join(dir, 'node-'));
    const install = (e: NodeJS.ProcessEnv, ...extra: string[]) =>
      runCli(['artifact', 'install', rules, '--rulesfiles-dir', join(node, 'rules'), '--plugins-dir', join(node, 'plugins'), ...plain, ...extra], { env: e });
    const refused = await install(env, '--verify-key', alice.pub);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/acme\/k8saudit@sha256:[a-f0-9]{64} is not signed/);
    expect(await readdir(node)).toEqual([]);

    // The publisher signs the plugin it already pushed, and the install goes through.
    expect((await runCli(['repo', 'sign', `${reg.host}/acme/k8saudit:0.7.0`, '--key', alice.priv, ...plain], { env })).code).toBe(0);
    const withConfigKeys = { ...env, DIGINFRACTL_REGISTRY_COSIGN_KEYS: alice.pub };
    const ok = await install(withConfigKeys);
    expect(ok.stderr).not.toContain('error:');
    expect(ok.code).toBe(0);
    expect(await readFile(join(node, 'plugins', 'libk8saudit.so'), 'utf8')).toBe('\x7fELF k8saudit\n');
    // --verify-key replaces the configured keys.
    expect((await install(withConfigKeys, '--verify-key', mallory.pub)).code).toBe(1);
  });

  it('artifact follow refuses an unsigned new version (reason "signature") and installs a signed one', async () => {
    const ref = `${reg.host}/rules/followed:stable`;
    const v1 = join(dir, 'v1'), v2 = join(dir, 'v2');
    await mkdir(v1);
    await mkdir(v2);
    await writeFile(join(v1, 'followed_rules.yaml'), '- list: v1\n  items: []\n');
    await writeFile(join(v2, 'followed_rules.yaml'), '- list: v2\n  items: []\n');
    const node = await mkdtemp(join(dir, 'follow-'));
    const follow = () =>
      runCli(['artifact', 'follow', ref, '--once', '--rulesfiles-dir', join(node, 'rules'), '--state-dir', join(node, 'state'), '--verify-key', alice.pub, ...plain, '-o', 'json'], { env });
    expect((await runCli(['repo', 'push', ref, join(v1, 'followed_rules.yaml'), '--type', 'rulesfile', '--version', '1.0.0', '--sign-key', alice.priv, ...plain], { env })).code).toBe(0);
    const first = await follow();
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject([{ result: 'updated', version: '1.0.0' }]);

    expect((await runCli(['repo', 'push', ref, join(v2, 'followed_rules.yaml'), '--type', 'rulesfile', '--version', '2.0.0', ...plain], { env })).code).toBe(0);
    const refused = await follow();
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject([{ result: 'rejected', reason: 'signature', version: '2.0.0', message: expect.stringContaining('is not signed') }]);
    expect(await readFile(join(node, 'rules', 'followed_rules.yaml'), 'utf8')).toBe('- list: v1\n  items: []\n');

    // Nothing changed: still refused, from the state.
    expect(JSON.parse((await follow()).stdout)).toMatchObject([{ result: 'rejected', reason: 'signature', version: '2.0.0' }]);
    // The publisher signs 2.0.0 after pushing it (cosign's usual order): the next check installs it.
    expect((await runCli(['repo', 'sign', ref, '--key', alice.priv, ...plain], { env })).code).toBe(0);
    const signed = await follow();
    expect(signed.code).toBe(0);
    expect(JSON.parse(signed.stdout)).toMatchObject([{ result: 'updated', version: '2.0.0' }]);
    expect(await readFile(join(node, 'rules', 'followed_rules.yaml'), 'utf8')).toBe('- list: v2\n  items: []\n');

    // A bad key file stops the agent at start, with exit 2.
    const bad = await runCli(['artifact', 'follow', ref, '--once', '--state-dir', join(node, 'state'), '--verify-key', join(dir, 'nope.pub'), ...plain], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cannot read the verification key');
  });
});
