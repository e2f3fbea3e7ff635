/**
 * The kustomize base in deploy/: `kubectl kustomize deploy/` renders objects valid against the Kubernetes
 * API schemas, with the same pod invariants as the chart, and the same objects as the chart's defaults.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEPLOY_DIR, ensureK8sTools, kubectl } from '../helpers/helm.js';
import { checkPodInvariants, checkServiceInvariants, helmTemplate, parseManifests, validateManifest, type K8sObject, type PodSpec } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
let objects: K8sObject[] = [];

beforeAll(async () => {
  await ensureK8sTools();
  const r = await kubectl(['kustomize', DEPLOY_DIR]);
  expect(r.code, r.stderr).toBe(0);
  objects = parseManifests(r.stdout);
}, 120_000);

describe('kubectl kustomize deploy/', () => {
  it('renders a DaemonSet, a ConfigMap, a ServiceAccount and a Service', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'DaemonSet', 'Service', 'ServiceAccount']);
  });

  it('renders only objects valid against the Kubernetes API schemas (unknown fields included)', () => {
    for (const obj of objects) validateManifest(obj);
  });

  it('runs install as an init container and follow as the container, on one config and the same host dirs', () => {
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    const inv = checkPodInvariants(ds.spec.template.spec as PodSpec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.install).toBeDefined();
    expect(inv.follow).toBeDefined();
    expect(inv.followIsNativeSidecar).toBe(false);
    for (const v of ds.spec.template.spec.volumes.filter((x: any) => x.hostPath)) expect(v.hostPath.type).toBe('DirectoryOrCreate');
    checkServiceInvariants(objects, ds, inv.follow);
    expect(ds.spec.template.spec.tolerations).toEqual([{ operator: 'Exists' }]);
  });

  it('names the ConfigMap by a hash of its content (a config change rolls the DaemonSet)', () => {
    const cm = objects.find((o) => o.kind === 'ConfigMap')!;
    expect(cm.metadata.name).toMatch(/^diginfractl-[a-z0-9]{10}$/);
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    expect(ds.spec.template.spec.volumes.find((v: any) => v.name === 'config').configMap.name).toBe(cm.metadata.name);
  });

  it('is equivalent to the Helm chart with default values', async () => {
    const r = await helmTemplate({ release: 'diginfractl' });
    expect(r.code, r.stderr).toBe(0);
    const byKind = (list: K8sObject[]) => Object.fromEntries(list.map((o) => [o.kind, normalize(o)]));
    expect(byKind(objects)).toEqual(byKind(parseManifests(r.stdout)));
  });
});

/** Drops what only Helm adds (chart/version labels, namespace, checksum) and kustomize's name hash. */
function normalize(o: K8sObject): K8sObject {
  const x = structuredClone(o);
  delete x.metadata.namespace;
  for (const k of ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/version']) delete x.metadata.labels?.[k];
  const unhash = (name: string) => name.replace(/-[a-z0-9]{10}$/, '');
  if (x.kind === 'ConfigMap') {
    x.metadata.name = unhash(x.metadata.name);
    x.data = Object.fromEntries(Object.entries<string>(x.data).map(([k, v]) => [k, parseYaml(v)]));
  }
  if (x.kind === 'DaemonSet') {
    const tpl = x.spec.template;
    delete tpl.metadata.annotations?.['checksum/config'];
    if (tpl.metadata.annotations && Object.keys(tpl.metadata.annotations).length === 0) delete tpl.metadata.annotations;
    for (const v of tpl.spec.volumes) if (v.configMap) v.configMap.name = unhash(v.configMap.name);
  }
  return x;
}
