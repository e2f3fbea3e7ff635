/**
 * `repo copy` between two real registries (and within one): every platform, the same digests, the
 * signatures with --with-signatures, and what a user of the mirror then does: pull a platform and
 * verify its signature there.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('repo copy (built CLI, two real registries)', () => {
  let upstream: TestRegistry;
  let mirror: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  let pub: string;
  let key: string;

  beforeAll(async () => {
    [upstream, mirror] = await Promise.all([startRegistry(), startRegistry()]);
    env = await cliEnv({ DIGINFRACTL_REGISTRY_PLAIN_HTTP: `${upstream.host},${mirror.host}` });
    dir = await mkdtemp(join(tmpdir(), 'copy-'));
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    key = join(dir, 'key.pem');
    pub = join(dir, 'key.pub');
    await writeFile(key, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(pub, pair.publicKey.export({ type: 'spki', format: 'pem' }));
    for (const arch of ['amd64', 'arm64']) {
      await mkdir(join(dir, arch));
      await writeFile(join(dir, arch, 'libk8saudit.so'), `\x7fELF k8saudit for ${arch}\n`);
    }
  });
  afterAll(async () => {
    await Promise.all([upstream?.stop(), mirror?.stop()]);
  });

  it('copies a signed two-platform plugin to a mirror: same digest, both platforms, the signature; the mirror serves pulls that verify', async () => {
    const push = await runCli(
      ['repo', 'push', `${upstream.host}/plugins/k8saudit`, join(dir, 'amd64/libk8saudit.so'), join(dir, 'arm64/libk8saudit.so'),
        '--type', 'plugin', '--version', '0.7.0', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--sign-key', key, '-o', 'json'],
      { env },
    );
    expect(push.stderr).toBe('');
    const { digest } = JSON.parse(push.stdout) as { digest: string };

    const copy = await runCli(['repo', 'copy', `${upstream.host}/plugins/k8saudit:0.7.0`, `${mirror.host}/mirror/plugins/k8saudit`, '--with-signatures'], { env });
    expect(copy.stderr).toBe('');
    expect(copy.code).toBe(0);
    expect(copy.stdout).toBe(`copied ${upstream.host}/plugins/k8saudit:0.7.0 to ${mirror.host}/mirror/plugins/k8saudit:0.7.0@${digest}, with its signatures\n`);

    // The mirror's tag points at the same bytes; an arm64 node pulls its build from there, verified.
    const head = await fetch(`${mirror.url}/v2/mirror/plugins/k8saudit/manifests/0.7.0`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    const dest = await mkdtemp(join(dir, 'pulled-'));
    const pull = await runCli(['repo', 'pull', `${mirror.host}/mirror/plugins/k8saudit:0.7.0`, '--dest', dest, '--platform', 'linux/arm64', '--verify-key', pub], { env });
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
    expect(await readFile(join(dest, 'libk8saudit.so'), 'utf8')).toBe('\x7fELF k8saudit for arm64\n');

    // Without --with-signatures the copy is unsigned, and a verifying pull says so.
    expect((await runCli(['repo', 'copy', `${upstream.host}/plugins/k8saudit@${digest}`, `${mirror.host}/unsigned/k8saudit:0.7.0`], { env })).code).toBe(0);
    const unsigned = await runCli(['repo', 'pull', `${mirror.host}/unsigned/k8saudit:0.7.0`, '--dest', dest, '--verify-key', pub], { env });
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain('is not signed');
  });

  it("keeps the mirror's own signatures when it copies the upstream ones again", async () => {
    const file = join(dir, 'merge_rules.yaml');
    await writeFile(file, '- list: merged\n  items: []\n');
    const push = await runCli(['repo', 'push', `${upstream.host}/rules/merge:1.0.0`, file, '--type', 'rulesfile', '--version', '1.0.0', '--sign-key', key, '-o', 'json'], { env });
    const { digest } = JSON.parse(push.stdout) as { digest: string };
    // The mirror's owner copies the artifact and signs it with a key of their own.
    const own = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ownKey = join(dir, 'own.key.pem');
    const ownPub = join(dir, 'own.pub');
    await writeFile(ownKey, own.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(ownPub, own.publicKey.export({ type: 'spki', format: 'pem' }));
    const target = `${mirror.host}/mirror/rules/merge:stable`;
    const first = await runCli(['repo', 'copy', `${upstream.host}/rules/merge:1.0.0`, target, '--with-signatures'], { env });
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe(`copied ${upstream.host}/rules/merge:1.0.0 to ${mirror.host}/mirror/rules/merge:stable@${digest}, with its signatures\n`);
    expect((await runCli(['repo', 'sign', `${mirror.host}/mirror/rules/merge:stable`, '--key', ownKey], { env })).code).toBe(0);
    // A refresh of the mirror copies the upstream signatures again: the owner's stays.
    expect((await runCli(['repo', 'copy', `${upstream.host}/rules/merge:1.0.0`, target, '--with-signatures'], { env })).code).toBe(0);
    for (const k of [pub, ownPub]) {
      const v = await runCli(['repo', 'verify', `${mirror.host}/mirror/rules/merge:stable`, '--verify-key', k], { env });
      expect(v.stderr, k).toBe('');
      expect(v.code).toBe(0);
    }
  });

  it('carries an artifact across an air gap in an OCI layout directory: registry -> oci:DIR -> another registry, signatures included', async () => {
    const file = join(dir, 'gap_rules.yaml');
    await writeFile(file, '- list: across_the_gap\n  items: []\n');
    const push = await runCli(['repo', 'push', `${upstream.host}/rules/gap:2.0.0`, file, '--type', 'rulesfile', '--version', '2.0.0', '--sign-key', key, '-o', 'json'], { env });
    const { digest } = JSON.parse(push.stdout) as { digest: string };
    const disk = join(dir, 'usb-stick');
    const out = await runCli(['repo', 'copy', `${upstream.host}/rules/gap:2.0.0`, `oci:${disk}`, '--with-signatures'], { env });
    expect(out.stderr).toBe('');
    expect(out.stdout).toBe(`copied ${upstream.host}/rules/gap:2.0.0 to oci:${disk}:2.0.0@${digest}, with its signatures\n`);
    // A standard layout: oci-layout, index.json naming the tags, blobs by digest.
    expect(JSON.parse(await readFile(join(disk, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(disk, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
    expect(index.manifests.find((m) => m.annotations['org.opencontainers.image.ref.name'] === '2.0.0')?.digest).toBe(digest);
    expect(await readFile(join(disk, 'blobs', 'sha256', digest.slice(7)))).toBeTruthy();

    // Inside: from the disk into the mirror, then what a node does.
    const back = await runCli(['repo', 'copy', `oci:${disk}:2.0.0`, `${mirror.host}/gap/rules`, '--with-signatures'], { env });
    expect(back.stderr).toBe('');
    expect(back.stdout).toBe(`copied oci:${disk}:2.0.0 to ${mirror.host}/gap/rules:2.0.0@${digest}, with its signatures\n`);
    const dest = await mkdtemp(join(dir, 'gap-'));
    const pull = await runCli(['repo', 'pull', `${mirror.host}/gap/rules:2.0.0`, '--dest', dest, '--verify-key', pub], { env });
    expect(pull.stderr).toBe('');
    expect(await readFile(join(dest, 'gap_rules.yaml'), 'utf8')).toBe('- list: across_the_gap\n  items: []\n');

    // A damaged disk is caught before anything is pushed; a missing tag is named.
    const blob = join(disk, 'blobs', 'sha256', digest.slice(7));
    await writeFile(blob, 'not what it was');
    const damaged = await runCli(['repo', 'copy', `oci:${disk}:2.0.0`, `${mirror.host}/gap/damaged`], { env });
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/error: .*(does not hash to|bytes, expected)/);
    const missing = await runCli(['repo', 'copy', `oci:${disk}:9.9.9`, `${mirror.host}/gap/none`], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`OCI layout ${disk} has no tag 9.9.9`);
  });

  it('repo pull reads a layout directory offline (oci:DIR:TAG), each blob and the signature checked', async () => {
    const file = join(dir, 'offline_rules.yaml');
    await writeFile(file, '- list: offline\n  items: []\n');
    const push = await runCli(['repo', 'push', `${upstream.host}/rules/offline:1.0.0`, file, '--type', 'rulesfile', '--version', '1.0.0', '--sign-key', key, '-o', 'json'], { env });
    const { digest } = JSON.parse(push.stdout) as { digest: string };
    const disk = join(dir, 'offline-disk');
    expect((await runCli(['repo', 'copy', `${upstream.host}/rules/offline:1.0.0`, `oci:${disk}`, '--with-signatures'], { env })).code).toBe(0);
    // Every byte comes from the directory: the reference names no registry.
    const dest = await mkdtemp(join(dir, 'offline-'));
    const pull = await runCli(['repo', 'pull', `oci:${disk}:1.0.0`, '--dest', dest, '--verify-key', pub], { env });
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain(`pulled oci:${disk}:1.0.0@${digest} (rulesfile offline 1.0.0)`);
    expect(await readFile(join(dest, 'offline_rules.yaml'), 'utf8')).toBe('- list: offline\n  items: []\n');
    // By digest too; a key that did not sign it is refused, and nothing is written.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const otherPub = join(dir, 'offline-other.pub');
    await writeFile(otherPub, other.publicKey.export({ type: 'spki', format: 'pem' }));
    const empty = await mkdtemp(join(dir, 'offline-none-'));
    const refused = await runCli(['repo', 'pull', `oci:${disk}@${digest}`, '--dest', empty, '--verify-key', otherPub], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/signature/i);
    expect(await readdir(empty)).toEqual([]);
    // A damaged blob is caught before it is extracted.
    const manifest = JSON.parse(await readFile(join(disk, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
    await writeFile(join(disk, 'blobs', 'sha256', manifest.layers[0]!.digest.slice(7)), 'tampered');
    const damaged = await runCli(['repo', 'pull', `oci:${disk}:1.0.0`, '--dest', empty], { env });
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/does not hash to|bytes, expected/);
    expect(await readdir(empty)).toEqual([]);
  });

  it("keeps the signatures a layout directory already has when it copies the upstream ones into it", async () => {
    const file = join(dir, 'layout_merge_rules.yaml');
    await writeFile(file, '- list: layout_merged\n  items: []\n');
    const push = await runCli(['repo', 'push', `${upstream.host}/rules/lm:1.0.0`, file, '--type', 'rulesfile', '--version', '1.0.0', '--sign-key', key, '-o', 'json'], { env });
    const { digest } = JSON.parse(push.stdout) as { digest: string };
    // The disk gets the artifact from a mirror whose owner signed it too (upstream key + own key)...
    const own = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ownKey = join(dir, 'lm-own.key.pem');
    const ownPub = join(dir, 'lm-own.pub');
    await writeFile(ownKey, own.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(ownPub, own.publicKey.export({ type: 'spki', format: 'pem' }));
    expect((await runCli(['repo', 'copy', `${upstream.host}/rules/lm:1.0.0`, `${mirror.host}/lm/rules`, '--with-signatures'], { env })).code).toBe(0);
    expect((await runCli(['repo', 'sign', `${mirror.host}/lm/rules:1.0.0`, '--key', ownKey], { env })).code).toBe(0);
    const disk = join(dir, 'lm-disk');
    expect((await runCli(['repo', 'copy', `${mirror.host}/lm/rules:1.0.0`, `oci:${disk}`, '--with-signatures'], { env })).code).toBe(0);
    // ...then is refreshed from upstream, which has only its own signature.
    const refresh = await runCli(['repo', 'copy', `${upstream.host}/rules/lm:1.0.0`, `oci:${disk}`, '--with-signatures'], { env });
    expect(refresh.stderr).toBe('');
    expect(refresh.code).toBe(0);
    // Carried inside, both keys still verify: the owner's signature survived the refresh.
    const back = await runCli(['repo', 'copy', `oci:${disk}:1.0.0`, `${mirror.host}/lm/inside`, '--with-signatures'], { env });
    expect(back.stdout).toBe(`copied oci:${disk}:1.0.0 to ${mirror.host}/lm/inside:1.0.0@${digest}, with its signatures\n`);
    for (const k of [pub, ownPub]) {
      const v = await runCli(['repo', 'verify', `${mirror.host}/lm/inside:1.0.0`, '--verify-key', k], { env });
      expect(v.stderr, k).toBe('');
      expect(v.code, k).toBe(0);
    }
  });

  it('copies within one registry (by mount), and names a missing source', async () => {
    const file = join(dir, 'copy_rules.yaml');
    await writeFile(file, '- list: copied\n  items: []\n');
    expect((await runCli(['repo', 'push', `${upstream.host}/rules/a:1.0.0`, file, '--type', 'rulesfile', '--version', '1.0.0'], { env })).code).toBe(0);
    const copy = await runCli(['repo', 'copy', `${upstream.host}/rules/a:1.0.0`, `${upstream.host}/rules/b:stable`, '--log-level', 'debug'], { env });
    expect(copy.code).toBe(0);
    expect(copy.stderr).toMatch(/"msg":"sha256:[a-f0-9]{64} mounted/);
    const dest = await mkdtemp(join(dir, 'b-'));
    expect((await runCli(['repo', 'pull', `${upstream.host}/rules/b:stable`, '--dest', dest], { env })).code).toBe(0);
    expect(await readFile(join(dest, 'copy_rules.yaml'), 'utf8')).toBe('- list: copied\n  items: []\n');

    const missing = await runCli(['repo', 'copy', `${upstream.host}/rules/a:9.9.9`, `${mirror.host}/rules/a`], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('9.9.9');
  });
});
