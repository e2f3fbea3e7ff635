/**
 * `diginfractl artifact info` against the real registry, by registry reference and through an index.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bufferBlob, type RegistryClient } from '../../src/registry/index.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { pushRules } from '../helpers/push.js';
import { clientFor, pushPlugin } from '../install/setup.js';

let reg: TestRegistry;
let client: RegistryClient;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  reg = await startRegistry();
  client = clientFor(reg);
  await pushPlugin(client, reg.host, 'acme/k8saudit', 'k8saudit', '0.7.0', { addFloatingTags: true });
  await pushRules(client, `${reg.host}/acme/k8saudit-rules:0.9.0`, '0.9.0', {
    name: 'k8saudit-rules',
    addFloatingTags: true,
    dependencies: [{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }],
    requirements: [{ name: 'engine_version', version: '0.40.0' }],
  });
  await pushRules(client, `${reg.host}/acme/k8saudit-rules:0.10.0`, '0.10.0', { name: 'k8saudit-rules', addFloatingTags: true });
  const dir = await tempDir('info-index-');
  await writeFile(
    join(dir, 'index.yaml'),
    stringify([
      { name: 'k8saudit-rules', type: 'rulesfile', registry: reg.host, repository: 'acme/k8saudit-rules', description: 'K8s audit rules', keywords: ['audit'], license: 'Apache-2.0' },
    ]),
  );
  env = await cliEnv();
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({ indexes: [{ name: 'corp', url: pathToFileURL(join(dir, 'index.yaml')).href }], registry: { plainHttp: [reg.host] } }),
  );
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

describe('artifact info', () => {
  it('shows tags sorted by semver, and the digest, platforms and config of the tag asked', async () => {
    const r = await runCli(['artifact', 'info', `${reg.host}/acme/k8saudit:0.7.0`, '-o', 'json'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [info, ...more] = JSON.parse(r.stdout);
    expect(more).toEqual([]); // one reference: an array of one, the same shape as for several
    expect(info).toMatchObject({
      reference: expect.stringMatching(new RegExp(`^${reg.host}/acme/k8saudit:0.7.0@sha256:[a-f0-9]{64}$`)),
      type: 'plugin',
      name: 'k8saudit',
      version: '0.7.0',
      platforms: ['linux/amd64', 'linux/arm64'],
      mediaType: 'application/vnd.oci.image.index.v1+json',
    });
    expect(info.tags).toEqual(['0.7.0', '0', '0.7', 'latest']);
  });

  it('resolves a name through the index, defaulting to latest, with dependencies and requirements', async () => {
    const r = await runCli(['artifact', 'info', 'k8saudit-rules:0.9', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    const [info] = JSON.parse(r.stdout);
    expect(info.index).toBe('corp');
    expect(info.entry).toMatchObject({ name: 'k8saudit-rules', license: 'Apache-2.0' });
    expect(info.resolvedTag).toBe('0.9.0');
    expect(info.platforms).toEqual([]);
    expect(info.dependencies).toEqual([{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }]);
    expect(info.requirements).toEqual([{ name: 'engine_version', version: '0.40.0' }]);
    expect(info.tags.slice(0, 2)).toEqual(['0.10.0', '0.9.0']);

    const latest = await runCli(['artifact', 'info', 'corp::k8saudit-rules'], { env });
    expect(latest.code).toBe(0);
    expect(latest.stdout).toMatch(/^NAME\s+k8saudit-rules \(index corp\)$/m);
    expect(latest.stdout).toMatch(/^VERSION\s+0\.10\.0$/m);
    expect(latest.stdout).toMatch(/^PLATFORMS\s+any \(platform-independent\)$/m);
  });

  it('lists manifests that refer to the artifact (a signature pushed with a subject)', async () => {
    const { parseOciReference } = await import('../../src/reference/reference.js');
    const { bufferBlob, sha256Digest } = await import('../../src/registry/index.js');
    const ref = parseOciReference(`${reg.host}/acme/k8saudit:0.7.0`);
    const subject = await client.resolve(ref);
    const empty = bufferBlob(Buffer.from('{}'));
    await client.pushBlob(ref, empty);
    const sig = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: empty.digest, size: empty.size }],
        subject,
      }),
    );
    await client.pushManifest({ registry: ref.registry, repository: ref.repository, digest: sha256Digest(sig) }, sig, 'application/vnd.oci.image.manifest.v1+json');
    const r = await runCli(['artifact', 'info', `${reg.host}/acme/k8saudit:0.7.0`, '-o', 'json'], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)[0].referrers).toEqual([{ digest: sha256Digest(sig), artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' }]);
  });

  it('names what is missing', async () => {
    const unknown = await runCli(['artifact', 'info', 'nope'], { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no artifact named "nope"');
    const missingTag = await runCli(['artifact', 'info', `${reg.host}/acme/k8saudit:9.9.9`], { env });
    expect(missingTag.code).toBe(1);
    expect(missingTag.stderr).toContain(`${reg.host}/acme/k8saudit:9.9.9`);
  });
});

describe('artifact manifest and artifact config: the stored bytes', () => {
  const sha256 = (b: string) => `sha256:${createHash('sha256').update(Buffer.from(b, 'latin1')).digest('hex')}`;
  const run = (args: string[]) => runCli(['artifact', ...args], { env });

  it('prints the image index byte for byte (its sha256 is the digest info shows), and one platform with --platform', async () => {
    const info = (JSON.parse((await run(['info', `${reg.host}/acme/k8saudit:0.7.0`, '-o', 'json'])).stdout) as { digest: string }[])[0]!;
    const index = await run(['manifest', `${reg.host}/acme/k8saudit:0.7.0`]);
    expect(index.stderr).toBe('');
    expect(index.code).toBe(0);
    expect(sha256(index.stdout)).toBe(info.digest);
    const parsed = JSON.parse(index.stdout) as { mediaType: string; manifests: { digest: string; platform: { architecture: string } }[] };
    expect(parsed.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const arm = await run(['manifest', `${reg.host}/acme/k8saudit:0.7.0`, '--platform', 'linux/arm64']);
    expect(arm.code).toBe(0);
    expect(sha256(arm.stdout)).toBe(parsed.manifests.find((m) => m.platform.architecture === 'arm64')!.digest);
    expect(JSON.parse(arm.stdout)).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: expect.stringContaining('plugin') });
    // By digest, the same bytes.
    const byDigest = await run(['manifest', `${reg.host}/acme/k8saudit@${info.digest}`]);
    expect(byDigest.stdout).toBe(index.stdout);
  });

  it("prints the config of this machine's build or of --platform, through an index name and a floating tag", async () => {
    const rules = await run(['config', 'corp::k8saudit-rules:0']);
    expect(rules.stderr).toBe('');
    expect(rules.code).toBe(0);
    // 0 is a floating tag: the newest 0.x, 0.10.0, which has no dependencies.
    const newest = JSON.parse(rules.stdout) as Record<string, unknown>;
    expect(newest).toMatchObject({ name: 'k8saudit-rules', version: '0.10.0' });
    expect(newest.dependencies).toBeUndefined();
    const older = JSON.parse((await run(['config', `${reg.host}/acme/k8saudit-rules:0.9.0`])).stdout) as Record<string, unknown>;
    expect(older).toMatchObject({
      name: 'k8saudit-rules',
      version: '0.9.0',
      dependencies: [{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }],
      requirements: [{ name: 'engine_version', version: '0.40.0' }],
    });
    const plugin = await run(['config', `${reg.host}/acme/k8saudit:0.7.0`, '--platform', 'linux/arm64']);
    expect(plugin.code).toBe(0);
    expect(JSON.parse(plugin.stdout)).toMatchObject({ name: 'k8saudit', version: '0.7.0' });
    // The config's digest is the one the platform's manifest names.
    const manifest = JSON.parse((await run(['manifest', `${reg.host}/acme/k8saudit:0.7.0`, '--platform', 'linux/arm64'])).stdout) as { config: { digest: string } };
    expect(sha256(plugin.stdout)).toBe(manifest.config.digest);
  });

  it('prints a config as stored even when diginfractl would refuse it, and says when --platform does not apply', async () => {
    const repo = parseOciReference(`${reg.host}/acme/odd:1.0.0`);
    const config = Buffer.from('{"name":"odd"}');
    await client.pushBlob(repo, bufferBlob(config));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.diginfra.rulesfile.config.v1+json', digest: sha256(config.toString('latin1')), size: config.length },
      layers: [],
    }));
    await client.pushManifest(repo, manifest, 'application/vnd.oci.image.manifest.v1+json');
    // info validates, and refuses it (no version, no layer)...
    expect((await run(['info', `${reg.host}/acme/odd:1.0.0`])).code).toBe(1);
    // ...config shows what is there, byte for byte.
    const r = await run(['config', `${reg.host}/acme/odd:1.0.0`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{"name":"odd"}');
    // A single manifest has one build for every platform: --platform is said not to apply, on stderr only.
    for (const cmd of ['config', 'manifest']) {
      const p = await run([cmd, `${reg.host}/acme/odd:1.0.0`, '--platform', 'linux/arm64']);
      expect(p.code, cmd).toBe(0);
      expect(p.stdout).toBe(cmd === 'config' ? '{"name":"odd"}' : manifest.toString());
      expect(p.stderr).toContain('is a single manifest, not an image index: it has no build per platform, so --platform linux/arm64 does not apply');
    }
  });

  it('names what is missing: a platform the index lacks (with those it has), a tag that does not exist; nothing on stdout', async () => {
    for (const cmd of ['manifest', 'config']) {
      const r = await run([cmd, `${reg.host}/acme/k8saudit:0.7.0`, '--platform', 'linux/s390x']);
      expect(r.code, cmd).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`${reg.host}/acme/k8saudit:0.7.0 has no build for linux/s390x; it has: linux/amd64, linux/arm64`);
    }
    const missing = await run(['manifest', `${reg.host}/acme/k8saudit:9.9.9`]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('not found');
  });
});

describe('several references at once, and --type', () => {
  it('artifact info REF REF: a block each (an array with -o json), in the order given', async () => {
    const json = await runCli(['artifact', 'info', 'corp::k8saudit-rules:0.9.0', `${reg.host}/acme/k8saudit:0.7.0`, '-o', 'json'], { env });
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const infos = JSON.parse(json.stdout) as { name: string; type: string; version: string; index?: string }[];
    expect(infos.map((i) => [i.name, i.type, i.version, i.index])).toEqual([
      ['k8saudit-rules', 'rulesfile', '0.9.0', 'corp'],
      ['k8saudit', 'plugin', '0.7.0', undefined],
    ]);
    const table = await runCli(['artifact', 'info', 'corp::k8saudit-rules:0.9.0', `${reg.host}/acme/k8saudit:0.7.0`], { env });
    const blocks = table.stdout.trimEnd().split('\n\n');
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toMatch(/^NAME\s+k8saudit-rules \(index corp\)$/m);
    expect(blocks[1]).toMatch(/^TYPE\s+plugin$/m);
  });

  it('--type: a short name resolves among entries of that type; an artifact of another type is refused, and nothing is printed', async () => {
    const byName = await runCli(['artifact', 'info', '--type', 'plugin', 'corp::k8saudit-rules'], { env });
    expect(byName.code).toBe(1);
    expect(byName.stderr).toContain('no plugin named "k8saudit-rules" in index "corp"');
    const byRef = await runCli(['artifact', 'info', '--type', 'plugin', `${reg.host}/acme/k8saudit:0.7.0`, `${reg.host}/acme/k8saudit-rules:0.9.0`], { env });
    expect(byRef.code).toBe(1);
    expect(byRef.stdout).toBe('');
    expect(byRef.stderr).toContain(`${reg.host}/acme/k8saudit-rules:0.9.0 is a rulesfile, not a plugin`);
    const ok = await runCli(['artifact', 'info', '--type', 'rulesfile', 'k8saudit-rules', '-o', 'json'], { env });
    expect(ok.code).toBe(0);
    expect((JSON.parse(ok.stdout) as { type: string }[])[0]!.type).toBe('rulesfile');
  });

  it('repo pull REF REF: index names and floating tags too; every reference is resolved before anything is written', async () => {
    const dest = await tempDir('pull-many-');
    const r = await runCli(['repo', 'pull', 'corp::k8saudit-rules:0', `${reg.host}/acme/k8saudit:0.7.0`, '--platform', 'linux/arm64', '--dest', dest, '-o', 'json'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const pulled = JSON.parse(r.stdout) as { name: string; version: string; files: string[]; platform?: string }[];
    expect(pulled.map((p) => [p.name, p.version, p.platform])).toEqual([
      ['k8saudit-rules', '0.10.0', undefined],
      ['k8saudit', '0.7.0', 'linux/arm64'],
    ]);
    expect((await readFile(join(dest, 'libk8saudit.so'))).toString('latin1')).toContain('k8saudit 0.7.0 linux/arm64');
    expect((await readdir(dest)).sort()).toEqual([...pulled.flatMap((p) => p.files)].sort());

    // One reference that does not resolve: nothing at all is written, and it is named.
    const empty = await tempDir('pull-none-');
    const bad = await runCli(['repo', 'pull', `${reg.host}/acme/k8saudit:0.7.0`, `${reg.host}/acme/k8saudit:9.9.9`, '--dest', empty], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${reg.host}/acme/k8saudit:9.9.9`);
    expect(await readdir(empty)).toEqual([]);
  });
});
