/**
 * The chart's trust values, rendered with a real helm: `registry.allowed` becomes the config's
 * registry.allowed, and `registry.trustedRoot.configMap` mounts a Sigstore trusted_root.json that the
 * config's registry.trustedRoot names, in both containers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../../src/config/validate.js';
import { ensureK8sTools } from '../helpers/helm.js';
import { helmTemplate, parseManifests, validateManifest, type K8sObject } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
beforeAll(() => ensureK8sTools(), 120_000);

async function render(set: string[], setJson: string[] = []): Promise<{ config: any; ds: any; objects: K8sObject[] }> {
  const r = await helmTemplate({ set, setJson });
  expect(r.code, r.stderr).toBe(0);
  const objects = parseManifests(r.stdout);
  const cm = objects.find((o) => o.kind === 'ConfigMap') as any;
  const ds = objects.find((o) => o.kind === 'DaemonSet') as any;
  return { config: parseYaml(cm.data['diginfractl.yaml']), ds, objects };
}

describe('chart values registry.allowed and registry.trustedRoot', () => {
  it('render into the config, and mount the trusted root ConfigMap where the config says, in every container', async () => {
    const { config, ds, objects } = await render(['registry.trustedRoot.configMap=sigstore-root'], ['registry.allowed=["ghcr.io/falcosecurity","mirror.internal:5000"]']);
    expect(config.registry.allowed).toEqual(['ghcr.io/falcosecurity', 'mirror.internal:5000']);
    expect(config.registry.trustedRoot).toBe('/etc/diginfractl-sigstore/trusted_root.json');
    expect(validateConfig(config, 'rendered').registry.trustedRoot).toBe('/etc/diginfractl-sigstore/trusted_root.json');
    const spec = ds.spec.template.spec;
    expect(spec.volumes).toContainEqual({ name: 'sigstore-trusted-root', configMap: { name: 'sigstore-root', items: [{ key: 'trusted_root.json', path: 'trusted_root.json' }] } });
    for (const c of [...(spec.initContainers ?? []), ...spec.containers].filter((c: any) => c.name === 'install' || c.name === 'follow')) {
      expect(c.volumeMounts, c.name).toContainEqual({ name: 'sigstore-trusted-root', mountPath: '/etc/diginfractl-sigstore', readOnly: true });
    }
    for (const o of objects) validateManifest(o);
  });

  it('render nothing when unset: every artifact allowed, the public-good root through TUF', async () => {
    const { config, ds } = await render([]);
    expect(config.registry.allowed).toBeUndefined();
    expect(config.registry.trustedRoot).toBeUndefined();
    expect(ds.spec.template.spec.volumes.map((v: any) => v.name)).not.toContain('sigstore-trusted-root');
  });

  it('refuse a pattern that is not a host or host/repository-prefix', async () => {
    const r = await helmTemplate({ setJson: ['registry.allowed=["https://ghcr.io"]'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("at '/registry/allowed/0': 'https://ghcr.io' does not match pattern");
  });
});
