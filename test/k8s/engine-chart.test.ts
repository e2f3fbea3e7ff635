/**
 * Embedding in the engine's chart: test/k8s/engine-chart depends on charts/diginfractl (a file://
 * dependency, built with the real helm) and puts diginfractl's named templates into the engine's own
 * DaemonSet. The rendering is checked against the Kubernetes schemas and the invariants of a working pod.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureK8sTools, helm, REPO_ROOT } from '../helpers/helm.js';
import { checkPodInvariants, parseManifests, validateManifest, type K8sObject, type PodSpec } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
const ENGINE_CHART = join(REPO_ROOT, 'test', 'k8s', 'engine-chart');

function template(args: string[] = []) {
  return helm(['template', 'diginfra', ENGINE_CHART, '--namespace', 'diginfra', ...args]);
}

beforeAll(async () => {
  await ensureK8sTools();
  // Packs charts/diginfractl as it is now into engine-chart/charts/ (git-ignored), as a chart author would.
  const r = await helm(['dependency', 'build', ENGINE_CHART]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}, 120_000);

describe('the engine chart that embeds diginfractl', () => {
  let objects: K8sObject[];
  let spec: PodSpec;

  beforeAll(async () => {
    const r = await template();
    expect(r.code, r.stderr).toBe(0);
    objects = parseManifests(r.stdout);
    spec = objects.find((o) => o.kind === 'DaemonSet')!.spec.template.spec;
  });

  it('lints strictly', async () => {
    const r = await helm(['lint', '--strict', ENGINE_CHART]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('renders the engine\'s DaemonSet and diginfractl\'s ConfigMap, nothing else of ours, all valid Kubernetes objects', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(['ConfigMap/diginfra-diginfractl', 'DaemonSet/diginfra-engine']);
    for (const o of objects) validateManifest(o);
  });

  it('runs install, then follow as a native sidecar holding the engine back, all on one config and shared emptyDirs', () => {
    const inv = checkPodInvariants(spec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.followIsNativeSidecar).toBe(true);
    expect(inv.follow!.startupProbe.httpGet.port).toBe('dctl-metrics');
    expect(spec.initContainers!.map((c) => c.name)).toEqual(['diginfractl-install', 'diginfractl-follow']);
    const engine = spec.containers.find((c) => c.name === 'engine')!;
    const volumes = Object.fromEntries((spec.volumes ?? []).map((v: any) => [v.name, v]));
    for (const dir of [inv.config.install.rulesfilesDir, inv.config.install.pluginsDir]) {
      const mount = engine.volumeMounts!.find((m) => m.mountPath === dir)!;
      expect(mount, `the engine mounts ${dir}`).toBeDefined();
      expect(volumes[mount.name].emptyDir, `${dir} is an emptyDir`).toBeDefined();
      expect(inv.install!.volumeMounts!.find((m) => m.mountPath === dir)!.name).toBe(mount.name);
    }
    // The follower reads the engine's versions endpoint in the same pod.
    expect(inv.config.follow.engineVersionsUrl).toBe('http://localhost:8765/versions');
  });

  it('gives every container, volume and port a name unique in the pod (ours carry the prefix)', () => {
    const all = [...spec.initContainers!, ...spec.containers];
    const names = all.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const volumes = (spec.volumes ?? []).map((v: any) => v.name);
    expect(new Set(volumes).size).toBe(volumes.length);
    for (const v of volumes) expect(v).toMatch(/^diginfractl-/);
    const ports = all.flatMap((c) => (c.ports ?? []).map((p) => p.name));
    expect(new Set(ports).size).toBe(ports.length);
    for (const c of all.filter((x) => x.name !== 'engine')) expect(c.image).toBe('ghcr.io/diginfra/diginfractl:0.1.0');
  });

  it('rolls the engine pods when diginfractl\'s config changes', async () => {
    const sum = (o: K8sObject[]) => o.find((x) => x.kind === 'DaemonSet')!.spec.template.metadata.annotations['checksum/diginfractl-config'];
    expect(sum(objects)).toMatch(/^[a-f0-9]{64}$/);
    const r = await template(['--set-json', 'diginfractl.artifacts.install.refs=["other-rules:1"]']);
    expect(sum(parseManifests(r.stdout))).not.toBe(sum(objects));
  });

  it('runs follow as a regular container of the engine\'s pod when native sidecars are off', async () => {
    const r = await template(['--set', 'diginfractl.artifacts.follow.nativeSidecar=false', '--kube-version', '1.28.9']);
    expect(r.code, r.stderr).toBe(0);
    const rendered = parseManifests(r.stdout);
    const s = rendered.find((o) => o.kind === 'DaemonSet')!.spec.template.spec as PodSpec;
    expect(s.initContainers!.map((c) => c.name)).toEqual(['diginfractl-install']);
    expect(s.containers.map((c) => c.name)).toEqual(['engine', 'diginfractl-follow']);
    expect(checkPodInvariants(s, rendered.filter((o) => o.kind === 'ConfigMap')).followIsNativeSidecar).toBe(false);
  });

  it('gets diginfractl\'s checks: native sidecars on 1.28 are refused with the same message', async () => {
    const r = await template(['--kube-version', '1.28.9']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('artifacts.follow.nativeSidecar=true needs Kubernetes 1.29 or later');
  });
});
