/**
 * `artifact install oci:DIR[:TAG]`: artifacts carried into an air-gapped network on a disk with
 * `repo copy ... oci:DIR` install from it offline (the registry they came from is stopped), the
 * dependencies found in the same layout, every blob checked, and `--frozen` works from it too.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RegistryClient } from '../../src/registry/index.js';
import { cliEnv, runCli, errorAsText } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { freePort } from '../helpers/net.js';
import { pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor, dirs, fakePlugin, pushPlugin } from './setup.js';

let reg: TestRegistry;
let client: RegistryClient;
let env: Awaited<ReturnType<typeof cliEnv>>;
/** A layout holding the rules and the plugin they need. */
let disk: string;
/** A layout holding the rules only. */
let rulesOnly: string;
/** A layout holding signed rules with their signature, and the keys. */
let signed: string;
let pub: string;
let otherPub: string;
let rulesDigest: string;

beforeAll(async () => {
  reg = await startRegistry();
  client = clientFor(reg);
  await pushPlugin(client, reg.host, 'acme/k8saudit', 'k8saudit', '0.7.0');
  await pushPlugin(client, reg.host, 'acme/k8saudit', 'k8saudit', '0.7.2');
  rulesDigest = await pushRules(client, `${reg.host}/acme/k8saudit-rules:1.0.0`, '1.0.0', {
    name: 'k8saudit-rules',
    content: '- list: k8s_audit\n  items: []\n',
    fileName: 'k8saudit_rules.yaml',
    dependencies: [{ name: 'k8saudit', version: '0.7.0' }],
  });
  env = await cliEnv();
  // The default index, somewhere nothing answers: an offline install must not need it.
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [{ name: 'diginfra', url: `http://127.0.0.1:${await freePort()}/index.yaml` }], registry: { plainHttp: [reg.host] } }));
  const root = await tempDir('oci-install-');
  disk = join(root, 'usb', 'diginfra');
  rulesOnly = join(root, 'usb', 'rules-only');
  for (const [ref, dir] of [
    [`${reg.host}/acme/k8saudit:0.7.0`, disk],
    [`${reg.host}/acme/k8saudit:0.7.2`, disk],
    [`${reg.host}/acme/k8saudit-rules:1.0.0`, disk],
    [`${reg.host}/acme/k8saudit-rules:1.0.0`, rulesOnly],
  ] as const) {
    const r = await runCli(['repo', 'copy', ref, `oci:${dir}`], { env });
    expect(r.code, r.stderr).toBe(0);
  }
  // Signed rules, copied with their signature.
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = join(root, 'key.pem');
  pub = join(root, 'key.pub');
  otherPub = join(root, 'other.pub');
  await writeFile(key, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await writeFile(pub, pair.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
  const file = join(root, 'signed_rules.yaml');
  await writeFile(file, '- list: signed\n  items: []\n');
  const push = await runCli(['repo', 'push', `${reg.host}/acme/signed:1.0.0`, file, '--type', 'rulesfile', '--version', '1.0.0', '--sign-key', key], { env });
  expect(push.code, push.stderr).toBe(0);
  signed = join(root, 'usb', 'signed');
  expect((await runCli(['repo', 'copy', `${reg.host}/acme/signed:1.0.0`, `oci:${signed}`, '--with-signatures'], { env })).code).toBe(0);
  // Offline from here on.
  await client.close();
  await reg.stop();
}, 90_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

function installArgs(d: Awaited<ReturnType<typeof dirs>>, ...refs: string[]): string[] {
  return ['artifact', 'install', ...refs, '--rulesfiles-dir', d.rules, '--plugins-dir', d.plugins, '--platform', 'linux/arm64', '-o', 'json'];
}

describe('artifact install oci:DIR[:TAG]', () => {
  it('installs from the layout offline, its dependency resolved from the same layout (the newest that satisfies it)', async () => {
    const d = await dirs();
    const r = await runCli(installArgs(d, `oci:${disk}:1.0.0`), { env });
    expect(r.code, r.stderr).toBe(0);
    // Neither the stopped registry nor the index was asked for anything.
    expect(r.stderr).not.toMatch(/index|cannot reach|ECONNREFUSED/);
    const out = JSON.parse(r.stdout);
    expect(out.installed.map((a: { name: string; version: string; ref: string }) => `${a.name} ${a.version} ${a.ref}`)).toEqual([
      `k8saudit-rules 1.0.0 oci:${disk}:1.0.0@${rulesDigest}`,
      expect.stringMatching(new RegExp(`^k8saudit 0\\.7\\.2 oci:${disk}:0\\.7\\.2@sha256:[0-9a-f]{64}$`)),
    ]);
    expect(await readFile(join(d.rules, 'k8saudit_rules.yaml'), 'utf8')).toBe('- list: k8s_audit\n  items: []\n');
    expect(await readFile(join(d.plugins, 'libk8saudit.so'))).toEqual(fakePlugin('k8saudit', '0.7.2', 'linux/arm64'));
    // The lock file says where they came from, and --frozen installs the same again, offline.
    const lock = await readFile(d.lockfile, 'utf8');
    expect(lock).toContain(`oci:${join(disk, '..')}`);
    const frozen = await runCli([...installArgs(d, `oci:${disk}:1.0.0`), '--frozen'], { env });
    expect(frozen.code, frozen.stderr).toBe(0);
    expect(JSON.parse(frozen.stdout).installed.map((a: { name: string }) => a.name)).toEqual(['k8saudit-rules', 'k8saudit']);
  });

  it('a dependency the layout lacks fails the install, naming the layout, before anything is written', async () => {
    const d = await dirs();
    const r = await runCli(installArgs(d, `oci:${rulesOnly}:1.0.0`), { env });
    expect(r.code).toBe(1);
    expect(errorAsText(r.stderr)).toContain(`error: k8saudit-rules 1.0.0 depends on k8saudit, which is not in the OCI layout ${rulesOnly}`);
    expect(await readdir(d.rules).catch(() => [])).toEqual([]);
    // --no-resolve-deps installs the rules alone.
    const alone = await runCli([...installArgs(d, `oci:${rulesOnly}:1.0.0`), '--no-resolve-deps'], { env });
    expect(alone.code, alone.stderr).toBe(0);
    expect(await readdir(d.rules)).toContain('k8saudit_rules.yaml');
  });

  it('verifies the signature copied into the layout; a key that did not sign it refuses the install', async () => {
    const d = await dirs();
    const refused = await runCli([...installArgs(d, `oci:${signed}:1.0.0`), '--verify-key', otherPub], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/signature/i);
    expect(await readdir(d.rules).catch(() => [])).toEqual([]);
    const ok = await runCli([...installArgs(d, `oci:${signed}:1.0.0`), '--verify-key', pub], { env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(await readFile(join(d.rules, 'signed_rules.yaml'), 'utf8')).toBe('- list: signed\n  items: []\n');
  });

  it('a tag the layout lacks, or a damaged blob, is refused', async () => {
    const d = await dirs();
    const missing = await runCli(installArgs(d, `oci:${disk}:9.9.9`), { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`OCI layout ${disk} has no tag 9.9.9`);
    const copy = await tempDir('oci-damaged-');
    const r = await runCli(['repo', 'copy', `oci:${rulesOnly}:1.0.0`, `oci:${copy}`], { env });
    expect(r.code, r.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(copy, 'blobs', 'sha256', rulesDigest.slice(7)), 'utf8'));
    const layer = manifest.layers[0].digest as string;
    await rm(join(copy, 'blobs', 'sha256', layer.slice(7)));
    await writeFile(join(copy, 'blobs', 'sha256', layer.slice(7)), 'tampered');
    // A fresh cache: the layer must come from the layout.
    const fresh = { ...env, XDG_CACHE_HOME: await tempDir('oci-cache-') };
    const damaged = await runCli([...installArgs(d, `oci:${copy}:1.0.0`), '--no-resolve-deps'], { env: fresh });
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/SIZE_MISMATCH|is \d+ bytes, expected|does not hash/);
    expect(await readdir(d.rules).catch(() => [])).toEqual([]);
  });
});
