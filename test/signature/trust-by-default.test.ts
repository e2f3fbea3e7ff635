/**
 * Trust by default, as a user meets it (the built CLI, a real registry, the Sigstore stand-in's trust
 * root in registry.trustedRoot): an index entry's signature policy is verified by `artifact install`
 * (dependencies included, before anything is written), `repo pull` and `artifact follow`, whether the
 * artifact is named, referenced in full, or only named so by its config; configured keys cover what no
 * index does; `--no-verify` is never silent; registry.allowed keeps everything else out.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseOciReference, type OciReference } from '../../src/reference/reference.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { signDigest } from '../../src/signature/cosign.js';
import { cliEnv, ROOT, runCli, type CliResult, errorAsText } from '../helpers/cli.js';
import { exists, tempDir } from '../helpers/fs.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushPlugin } from '../install/setup.js';
import { GITHUB_ISSUER, SigstoreStandin, writeV2Manifest, type SignOptions } from './sigstore-standin.js';
import { generateKeyPairSync } from 'node:crypto';

const RELEASE = 'https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1';
const FALCO_RELEASE = 'https://github.com/falcosecurity/rules/.github/workflows/release.yaml@refs/tags/falco-rules-1.0.0';
const ACME_POLICY = { cosign: { 'certificate-identity-regexp': '^https://github\\.com/acme/', 'certificate-oidc-issuer': GITHUB_ISSUER } };
const WANTS = `signed keylessly by identity matching "^https://github\\.com/acme/", issuer "${GITHUB_ISSUER}"`;

let reg: TestRegistry;
let client: RegistryClient;
let standin: SigstoreStandin;
let env: NodeJS.ProcessEnv & { HOME: string };
let work: string;

const entry = (name: string, type: string, repository: string, signature?: object) => ({ name, type, registry: reg.host, repository, description: name, keywords: [name], ...(signature && { signature }) });

beforeAll(async () => {
  reg = await startRegistry();
  client = pushClient();
  work = await tempDir('trust-default-');
  standin = await SigstoreStandin.start(work);
  // acme's own index, and the real falcosecurity index with its entries moved to the test registry.
  await writeFile(
    join(work, 'acme.yaml'),
    stringify([
      entry('rules', 'rulesfile', 'acme/rules', ACME_POLICY),
      entry('k8s-rules', 'rulesfile', 'acme/k8s-rules', ACME_POLICY),
      entry('k8saudit', 'plugin', 'acme/k8saudit', ACME_POLICY),
      entry('open-rules', 'rulesfile', 'acme/open-rules'),
      entry('vendor-rules', 'rulesfile', 'vendor/rules', ACME_POLICY),
    ]),
  );
  const falco = (await readFile(join(ROOT, 'test/fixtures/falcosecurity-index.yaml'), 'utf8')).replaceAll('registry: ghcr.io', `registry: ${reg.host}`);
  await writeFile(join(work, 'falcosecurity.yaml'), falco);
  env = await cliEnv();
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [reg.host], trustedRoot: standin.trustedRootFile } }));
  for (const name of ['acme', 'falcosecurity']) expect((await runCli(['index', 'add', name, join(work, `${name}.yaml`)], { env })).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

let n = 0;
/** A new version of a rules artifact at `repository` (its config named `name`): its reference and digest. */
async function publish(repository: string, name = repository.split('/').pop()!): Promise<{ ref: string; repo: OciReference; digest: string; version: string }> {
  const version = `1.0.${++n}`;
  const ref = `${reg.host}/${repository}:${version}`;
  const digest = await pushRules(client, ref, version, { name, content: `- list: l${n}\n  items: []\n`, fileName: `${name}.yaml` });
  return { ref, repo: parseOciReference(ref), digest, version };
}

async function signed(repository: string, opts: Partial<SignOptions> & { format?: 'signV2' | 'signV3' } = {}, name?: string) {
  const p = await publish(repository, name);
  await standin[opts.format ?? 'signV3'](client, p.repo, p.digest, { identity: RELEASE, ...opts });
  return p;
}

interface Run extends CliResult {
  rules: string;
  plugins: string;
}

async function install(refs: string[], extra: string[] = [], e: NodeJS.ProcessEnv = env): Promise<Run> {
  const node = await tempDir('node-');
  const rules = join(node, 'rules');
  const plugins = join(node, 'plugins');
  const r = await runCli(['artifact', 'install', ...refs, '--rulesfiles-dir', rules, '--plugins-dir', plugins, '-o', 'json', ...extra], { env: e });
  return { ...r, stderr: errorAsText(r.stderr), rules, plugins };
}

/** The messages of the CLI's log lines (JSON on a pipe). */
function logged(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg);
}

/** Nothing was written: neither directory exists (the install creates them when it writes). */
async function nothingWritten(r: Run): Promise<void> {
  expect(await exists(r.rules)).toBe(false);
  expect(await exists(r.plugins)).toBe(false);
}

describe('artifact install verifies by default', () => {
  it.each(['signV2', 'signV3'] as const)('installs an artifact signed as its index entry requires (%s), by name and by full reference', async (format) => {
    const p = await signed('acme/rules', { format });
    for (const ref of [`acme::rules:${p.version}`, p.ref]) {
      const r = await install([ref]);
      expect(r.stderr).not.toContain('"level":40');
      expect(r.code).toBe(0);
      expect(await readdir(r.rules)).toContain('rules.yaml');
      expect(logged(r.stderr)).toContain(`rules ${p.version}: signed as its policy requires (${WANTS} (index "acme", entry "rules"))`);
    }
  });

  const refusals: [string, Partial<SignOptions> | 'unsigned' | 'tampered', string, RegExp][] = [
    ['another identity', { identity: 'https://github.com/mallory/rules/.github/workflows/release.yml@refs/heads/main' }, 'SIGNATURE_IDENTITY', /is signed by "https:\/\/github.com\/mallory\/rules\/.github\/workflows\/release.yml@refs\/heads\/main" \(issuer "https:\/\/token.actions.githubusercontent.com"\), but its policy requires/],
    ['another issuer', { issuer: 'https://gitlab.example' }, 'SIGNATURE_IDENTITY', /issuer "https:\/\/gitlab.example" is not "https:\/\/token.actions.githubusercontent.com"/],
    ['a certificate that had expired when the log saw it', { logDelayMs: 3_600_000 }, 'SIGNATURE_INVALID', /its certificate does not verify: .*the log integrated the signature at/],
    ['a log entry signed by an unknown log key', { untrustedLog: true }, 'SIGNATURE_INVALID', /its transparency-log (entry|inclusion proof|checkpoint) does not verify/],
    ['a payload naming another digest', { payloadDigest: `sha256:${'7'.repeat(64)}` }, 'SIGNATURE_INVALID', new RegExp(`it signs sha256:${'7'.repeat(64)}, another digest`)],
    ['a tampered signature layer', 'tampered', 'SIGNATURE_INVALID', /its signature does not verify|its transparency-log entry does not verify/],
    ['no signature at all', 'unsigned', 'SIGNATURE_MISSING', /is not signed: no cosign signature at tag sha256-[a-f0-9]{64}\.sig and no Sigstore bundle among its referrers/],
  ];

  /** What the CLI's hint says for each refusal code. */
  const HINTS: Record<string, string> = {
    SIGNATURE_IDENTITY: 'hint: if the publisher moved its release workflow',
    SIGNATURE_INVALID: 'hint: a signature that does not verify is treated as no signature',
    SIGNATURE_MISSING: 'hint: the publisher signs it',
  };

  it.each(refusals)('refuses %s, writes nothing, and says why', async (_what, how, code, reason) => {
    let p;
    if (how === 'unsigned') p = await publish('acme/rules');
    else if (how === 'tampered') {
      p = await signed('acme/rules', { format: 'signV2' });
      const at = { registry: p.repo.registry, repository: p.repo.repository, tag: `${p.digest.replace(':', '-')}.sig` };
      const layer = ((await client.fetchManifest(at)).json as { layers: { digest: string; annotations: Record<string, string> }[] }).layers[0]!;
      const sig = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64');
      sig[sig.length - 1]! ^= 1;
      await writeV2Manifest(client, at, [{ ...layer, annotations: { ...layer.annotations, 'dev.cosignproject.cosign/signature': sig.toString('base64') } }]);
    } else p = await signed('acme/rules', how);
    const r = await install([`acme::rules:${p.version}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).toContain(HINTS[code]);
    expect(r.stderr).toContain(`${reg.host}/acme/rules:${p.version}@${p.digest}`);
    expect(r.stderr).toContain(`its policy requires: ${WANTS} (index "acme", entry "rules")`);
    await nothingWritten(r);
  });

  it('--no-verify installs an unsigned artifact, with a warning every run', async () => {
    const p = await publish('acme/rules');
    const r = await install([p.ref], ['--no-verify']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('signature verification is off (--no-verify, or verify: false in the config)');
    expect(await readdir(r.rules)).toContain('rules.yaml');
    // verify: false in the environment (or the config) does the same; --verify overrides it.
    const off = { ...env, DIGINFRACTL_VERIFY: 'false' };
    expect((await install([p.ref], [], off)).stderr).toContain('signature verification is off');
    expect((await install([p.ref], ['--verify'], off)).code).toBe(1);
    expect((await install([p.ref], ['--no-verify', '--verify-key', standin.trustedRootFile])).code).toBe(2);
  });

  it('verifies every dependency before anything is written, the rules file that needs it included', async () => {
    const plugin = await pushPlugin(client, reg.host, 'acme/k8saudit', 'k8saudit', '0.7.0');
    const rulesRef = `${reg.host}/acme/k8s-rules:2.0.0`;
    const rules = await pushRules(client, rulesRef, '2.0.0', { name: 'k8s-rules', dependencies: [{ name: 'k8saudit', version: '0.7.0' }] });
    await standin.signV3(client, parseOciReference(rulesRef), rules, { identity: RELEASE });
    const refused = await install(['acme::k8s-rules:2.0.0']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`${reg.host}/acme/k8saudit:0\\.7\\.0@${plugin} is not signed`));
    expect(refused.stderr).toContain('(index "acme", entry "k8saudit")');
    await nothingWritten(refused);
    // The plugin's image index is what is signed (its root digest), as cosign signs a multi-platform image.
    await standin.signV2(client, parseOciReference(`${reg.host}/acme/k8saudit`), plugin, { identity: RELEASE });
    const ok = await install(['acme::k8s-rules:2.0.0']);
    expect(ok.code).toBe(0);
    expect(await readdir(ok.plugins)).toEqual(['libk8saudit.so']);
  });

  it("applies an index entry's policy to an artifact found elsewhere whose config has that entry's name", async () => {
    const copy = await publish('elsewhere/rules-copy', 'rules');
    const r = await install([copy.ref]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`its policy requires: ${WANTS} (index "acme", entry "rules", by the artifact's name)`);
    await nothingWritten(r);
    // An artifact no index knows, by any name, has no policy: installed as before.
    expect((await install([(await publish('elsewhere/free')).ref])).code).toBe(0);
  });

  it('checks configured keys for what no index policy covers; an indexed artifact keeps its own policy', async () => {
    const dir = await tempDir('keys-');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'cosign.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const withKeys = { ...env, DIGINFRACTL_REGISTRY_COSIGN_KEYS: join(dir, 'cosign.pub') };
    const free = await publish('elsewhere/keyed');
    const unsigned = await install([free.ref], [], withKeys);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain(`(the keys of registry.cosignKeys)`);
    await signDigest(client, free.repo, free.digest, privateKey);
    expect((await install([free.ref], [], withKeys)).code).toBe(0);
    // acme/rules is covered by its index entry: the keyless policy applies, not the key.
    const keyedOnly = await publish('acme/rules');
    await signDigest(client, keyedOnly.repo, keyedOnly.digest, privateKey);
    const covered = await install([keyedOnly.ref], [], withKeys);
    expect(covered.code).toBe(1);
    expect(covered.stderr).toContain(`its policy requires: ${WANTS}`);
  });
});

describe('the falcosecurity index: an entry with a policy and an unsigned artifact', () => {
  it('is refused at install, for a name and for a full reference; signed by the release workflow it goes in', async () => {
    const p = await publish('falcosecurity/rules/falco-rules', 'falco-rules');
    const wants = `signed keylessly by identity matching "https://github.com/falcosecurity/rules/", issuer "${GITHUB_ISSUER}" (index "falcosecurity", entry "falco-rules")`;
    for (const ref of [`falcosecurity::falco-rules:${p.version}`, p.ref]) {
      const r = await install([ref]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${reg.host}/falcosecurity/rules/falco-rules:${p.version}@${p.digest} is not signed`);
      expect(r.stderr).toContain(wants);
      await nothingWritten(r);
    }
    await standin.signV3(client, p.repo, p.digest, { identity: FALCO_RELEASE });
    expect((await install([`falcosecurity::falco-rules:${p.version}`])).code).toBe(0);
  });

  it('is refused at follow (reason signature, old files kept), for a name and for a full reference, until it is signed', async () => {
    const first = await publish('falcosecurity/rules/falco-incubating-rules', 'falco-incubating-rules');
    await standin.signV2(client, first.repo, first.digest, { identity: FALCO_RELEASE });
    for (const ref of ['falcosecurity::falco-incubating-rules:stable', `${reg.host}/falcosecurity/rules/falco-incubating-rules:stable`]) {
      const node = await tempDir('follow-');
      const follow = () => runCli(['artifact', 'follow', ref, '--once', '--rulesfiles-dir', join(node, 'rules'), '--state-dir', join(node, 'state'), '-o', 'json'], { env });
      await client.pushManifest({ ...first.repo, tag: 'stable' }, (await client.fetchManifest({ ...first.repo, digest: first.digest })).bytes, 'application/vnd.oci.image.manifest.v1+json');
      expect(JSON.parse((await follow()).stdout)).toMatchObject([{ result: 'updated', version: first.version }]);
      const installed = await readFile(join(node, 'rules', 'falco-incubating-rules.yaml'), 'utf8');

      const next = await publish('falcosecurity/rules/falco-incubating-rules', 'falco-incubating-rules');
      await client.pushManifest({ ...next.repo, tag: 'stable' }, (await client.fetchManifest({ ...next.repo, digest: next.digest })).bytes, 'application/vnd.oci.image.manifest.v1+json');
      const refused = await follow();
      expect(refused.code).toBe(1);
      expect(JSON.parse(refused.stdout)).toMatchObject([{ result: 'rejected', reason: 'signature', version: next.version, message: expect.stringContaining('is not signed') }]);
      expect(JSON.parse(refused.stdout)[0].message).toContain('(index "falcosecurity", entry "falco-incubating-rules")');
      expect(await readFile(join(node, 'rules', 'falco-incubating-rules.yaml'), 'utf8')).toBe(installed);
      // Still refused from the state; signed (a v3 bundle referrer, after the push) it goes in at the next check.
      expect(JSON.parse((await follow()).stdout)).toMatchObject([{ result: 'rejected', reason: 'signature' }]);
      await standin.signV3(client, next.repo, next.digest, { identity: FALCO_RELEASE });
      expect(JSON.parse((await follow()).stdout)).toMatchObject([{ result: 'updated', version: next.version }]);
    }
  });

  it('a signature by someone else is a refusal like the others (SIGNATURE_IDENTITY), not an error', async () => {
    const p = await publish('falcosecurity/rules/falco-sandbox-rules', 'falco-sandbox-rules');
    await standin.signV3(client, p.repo, p.digest, { identity: 'https://github.com/mallory/rules/.github/workflows/x.yml@refs/heads/main' });
    const node = await tempDir('follow-');
    const r = await runCli(['artifact', 'follow', p.ref, '--once', '--rulesfiles-dir', join(node, 'rules'), '--state-dir', join(node, 'state'), '-o', 'json'], { env });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject([{ result: 'rejected', reason: 'signature', message: expect.stringContaining('is signed by "https://github.com/mallory/') }]);
    expect(await exists(join(node, 'rules'))).toBe(false);
  });
});

describe('repo pull and artifact info', () => {
  it('repo pull of a full reference verifies it; --no-verify pulls with the warning', async () => {
    const p = await publish('acme/rules');
    const dest = await tempDir('pull-');
    const refused = await runCli(['repo', 'pull', p.ref, '--dest', dest], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is not signed');
    expect(await readdir(dest)).toEqual([]);
    const pulled = await runCli(['repo', 'pull', p.ref, '--dest', dest, '--no-verify'], { env });
    expect(pulled.code).toBe(0);
    expect(pulled.stderr).toContain('signature verification is off');
    expect(await readdir(dest)).toEqual(['rules.yaml']);
  });

  it('artifact info shows the policy that applies and whether the digest verifies under it', async () => {
    const good = await signed('acme/rules');
    const info = await runCli(['artifact', 'info', `acme::rules:${good.version}`], { env });
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(new RegExp(`^POLICY\\s+${WANTS.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')} \\(index "acme", entry "rules"\\)$`, 'm'));
    expect(info.stdout).toMatch(new RegExp(`^VERIFIED\\s+yes: signed by "${RELEASE}" \\(issuer "${GITHUB_ISSUER}"\\), referrer sha256:[a-f0-9]{64}$`, 'm'));
    const bad = await publish('acme/rules');
    // -o json of artifact info is an array, one element per reference.
    const [json] = JSON.parse((await runCli(['artifact', 'info', bad.ref, '-o', 'json'], { env })).stdout) as { signaturePolicy: unknown }[];
    expect(json?.signaturePolicy).toMatchObject({ policies: [{ from: 'index "acme", entry "rules"' }], verified: false, code: 'SIGNATURE_MISSING' });
    const open = await publish('acme/open-rules');
    expect((await runCli(['artifact', 'info', open.ref], { env })).stdout).toMatch(/^POLICY\s+none \(no index entry describes it, and no key is configured\)$/m);
  });
});

describe('registry.allowed', () => {
  it('refuses what comes from outside it, from a reference, an index entry, a dependency or a mirror, naming the registry and the setting', async () => {
    const inside = await signed('acme/rules');
    const outside = await signed('vendor/rules');
    const allowed = { ...env, DIGINFRACTL_REGISTRY_ALLOWED: `${reg.host}/acme` };
    expect((await install([inside.ref], [], allowed)).code).toBe(0);
    for (const ref of [outside.ref, `acme::vendor-rules:${outside.version}`]) {
      const r = await install([ref], [], allowed);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: ${reg.host}/vendor/rules is outside registry.allowed (${reg.host}/acme)`);
      expect(r.stderr).toContain('DIGINFRACTL_REGISTRY_ALLOWED');
      await nothingWritten(r);
    }
    // A dependency found outside: nothing is written, not even the rules file inside.
    const depRef = `${reg.host}/acme/needs-vendor:1.0.0`;
    const dep = await pushRules(client, depRef, '1.0.0', { name: 'needs-vendor', dependencies: [{ name: 'vendor-plugin', version: '1.0.0' }] });
    await standin.signV3(client, parseOciReference(depRef), dep, { identity: RELEASE });
    await pushPlugin(client, reg.host, 'acme/vendor-plugin', 'vendor-plugin', '1.0.0');
    const viaDep = await install([depRef], [], { ...allowed, DIGINFRACTL_REGISTRY_ALLOWED: `${reg.host}/acme/needs-vendor` });
    expect(viaDep.code).toBe(1);
    expect(viaDep.stderr).toContain(`${reg.host}/acme/vendor-plugin is outside registry.allowed`);
    await nothingWritten(viaDep);
    // A mirror serves what was asked of another registry: the mirror must be allowed too.
    const mirrored = await cliEnv();
    await writeFile(mirrored.DIGINFRACTL_CONFIG!, stringify({ indexes: [], verify: false, registry: { plainHttp: [reg.host], mirrors: { 'registry.example': reg.host }, allowed: ['registry.example/acme'] } }));
    const viaMirror = await install([`registry.example/acme/rules:${inside.version}`], [], mirrored);
    expect(viaMirror.code).toBe(1);
    expect(viaMirror.stderr).toContain(`registry.example/acme/rules is served by the mirror ${reg.host} (registry.mirrors), and ${reg.host}/acme/rules is outside registry.allowed (registry.example/acme)`);
    // repo pull and artifact follow say the same.
    const pull = await runCli(['repo', 'pull', outside.ref, '--dest', await tempDir('pull-')], { env: allowed });
    expect(pull.stderr).toContain('is outside registry.allowed');
    const node = await tempDir('follow-');
    const follow = await runCli(['artifact', 'follow', outside.ref, '--once', '--state-dir', join(node, 'state'), '--rulesfiles-dir', join(node, 'rules'), '-o', 'json'], { env: allowed });
    expect(JSON.parse(follow.stdout)).toMatchObject([{ result: 'error', message: expect.stringContaining(`${reg.host}/vendor/rules is outside registry.allowed`) }]);
  });

  it('config show lists it; index add warns about the entries outside it', async () => {
    const e = await cliEnv({ DIGINFRACTL_REGISTRY_ALLOWED: `${reg.host}/acme,ghcr.io` });
    await mkdir(join(e.HOME, '.config'), { recursive: true });
    await writeFile(e.DIGINFRACTL_CONFIG!, stringify({ indexes: [] }));
    const shown = await runCli(['config', 'show', '-o', 'json'], { env: e });
    expect(JSON.parse(shown.stdout)).toMatchObject({ config: { registry: { allowed: [`${reg.host}/acme`, 'ghcr.io'] } }, sources: { 'registry.allowed': 'env' } });
    const added = await runCli(['index', 'add', 'acme', join(work, 'acme.yaml')], { env: e });
    expect(added.code).toBe(0);
    expect(logged(added.stderr)).toContain(`index "acme": 1 entry is outside registry.allowed (${reg.host}/acme, ghcr.io) and cannot be installed: vendor-rules (${reg.host}/vendor/rules)`);
  });
});
