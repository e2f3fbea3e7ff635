/**
 * `diginfractl artifact info` against the real registry, by registry reference and through an index.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RegistryClient } from '../../src/registry/client.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor, pushPlugin, pushRules, tempDir } from '../install/setup.js';

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
    const info = JSON.parse(r.stdout);
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
    const info = JSON.parse(r.stdout);
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
    const { bufferBlob, sha256Digest } = await import('../../src/registry/client.js');
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
    expect(JSON.parse(r.stdout).referrers).toEqual([{ digest: sha256Digest(sig), artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' }]);
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
