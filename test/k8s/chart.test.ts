/**
 * The Helm chart, with a real helm v4 (no cluster): every example values file lints strictly and renders
 * objects that are valid Kubernetes API objects and form a working pod; bad values fail at template time.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CHART_DIR, ensureK8sTools, helm } from '../helpers/helm.js';
import { parseArtifactRef } from '../../src/reference/reference.js';
import {
  checkPodInvariants,
  checkServiceInvariants,
  effectiveValues,
  helmTemplate,
  parseManifests,
  validateManifest,
  type K8sObject,
  type PodSpec,
} from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- values and manifests are untyped YAML */
const CI_DIR = join(CHART_DIR, 'ci');
const EXAMPLES = readdirSync(CI_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const SCHEMA_ERROR = "values don't meet the specifications of the schema";

beforeAll(() => ensureK8sTools(), 120_000);

it('has example values files to test', () => {
  expect(EXAMPLES).toEqual(expect.arrayContaining(['default-values.yaml', 'embedded-values.yaml', 'nonroot-values.yaml', 'private-registry-values.yaml']));
});

describe('helm lint --strict', () => {
  it.each(EXAMPLES)('passes with ci/%s', async (file) => {
    const r = await helm(['lint', '--strict', CHART_DIR, '--values', join(CI_DIR, file)]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });
});

describe.each(EXAMPLES)('helm template with ci/%s', (file) => {
  const path = join(CI_DIR, file);
  let objects: K8sObject[] = [];
  let values: any;
  let ds: K8sObject;

  beforeAll(async () => {
    const r = await helmTemplate({ valuesFiles: [path] });
    expect(r.code, r.stderr).toBe(0);
    objects = parseManifests(r.stdout);
    values = effectiveValues([path]);
    const daemonSets = objects.filter((o) => o.kind === 'DaemonSet');
    expect(daemonSets).toHaveLength(1);
    ds = daemonSets[0]!;
  });

  it('renders only objects valid against the Kubernetes API schemas (unknown fields included)', () => {
    expect(objects.length).toBeGreaterThanOrEqual(3);
    for (const obj of objects) validateManifest(obj);
    for (const obj of objects) expect(obj.metadata.namespace, `${obj.kind} namespace`).toBe('diginfra');
  });

  it('runs install as an init container and follow after it, both on one config and the same host dirs', () => {
    const pod = ds.spec.template.spec as PodSpec;
    const inv = checkPodInvariants(pod, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(!!inv.install).toBe(values.artifacts.install.enabled);
    expect(!!inv.follow).toBe(values.artifacts.follow.enabled);
    expect(inv.followIsNativeSidecar).toBe(values.artifacts.follow.enabled && values.artifacts.follow.nativeSidecar);
    // hostPath volumes carry the paths and type from values; emptyDir when hostPaths are off.
    const byName = Object.fromEntries((pod.volumes ?? []).map((v: any) => [v.name, v]));
    const expected = { rulesfiles: values.hostPaths.rulesfilesDir, plugins: values.hostPaths.pluginsDir, state: values.hostPaths.stateDir };
    for (const [name, dir] of Object.entries(expected)) {
      if (values.hostPaths.enabled) expect(byName[name].hostPath, name).toEqual({ path: dir, type: values.hostPaths.type });
      else expect(byName[name].emptyDir, name).toBeDefined();
    }
    // Extra containers (the engine in embedded mode) are regular containers of the same pod.
    for (const extra of values.extraContainers) expect(pod.containers.map((c) => c.name)).toContain(extra.name);
    if (inv.followIsNativeSidecar) expect(pod.containers.length).toBeGreaterThan(0);
  });

  it('renders a config file that lists the refs and settings from values', () => {
    const cm = objects.find((o) => o.kind === 'ConfigMap')!;
    const config = parseYaml(cm.data['diginfractl.yaml']);
    expect(config.install.refs).toEqual(values.artifacts.install.refs);
    expect(config.follow.refs).toEqual(values.artifacts.follow.refs);
    expect(config.follow.every).toBe(values.artifacts.follow.every);
    expect(config.follow.jitter).toBe(values.artifacts.follow.jitter);
    expect(config.install.resolveDeps).toBe(values.artifacts.install.resolveDeps);
    expect(config.indexes).toEqual(values.indexes);
    expect(config.install.allowedTypes).toEqual(values.allowedTypes);
    expect(config.follow.allowedTypes).toEqual(values.allowedTypes);
    expect(config.registry.plainHttp).toEqual(values.registry.plainHttp);
    expect(config.registry.insecureSkipTlsVerify).toEqual(values.registry.insecureSkipTlsVerify);
    expect(config.registry.mirrors).toEqual(values.registry.mirrors);
    // Verification keys: files beside the config in the same ConfigMap, listed in registry.cosignKeys.
    const keys: string[] = values.registry.cosignPublicKeys ?? [];
    expect(config.registry.cosignKeys).toEqual(keys.length ? keys.map((_, i) => `/etc/diginfractl/cosign-${i}.pub`) : undefined);
    keys.forEach((pem, i) => {
      expect(cm.data[`cosign-${i}.pub`]).toBe(`${pem.trim()}\n`);
      expect(createPublicKey(cm.data[`cosign-${i}.pub`]).asymmetricKeyType).toBe('ec');
    });
    expect(config.registry.authFile !== undefined).toBe(values.registry.auth.existingSecret !== '');
    expect(Object.keys(config.registry.caFiles).sort()).toEqual(values.registry.caSecret.name ? [...values.registry.caSecret.hosts].sort() : []);
    expect(config.install.engineVersion).toBe(values.engine.version || undefined);
    expect(config.follow.engineVersion).toBe(values.engine.version || undefined);
    expect(config.follow.engineVersionsUrl).toBe(values.engine.versionsUrl || undefined);
    expect(config.follow.metricsAddr).toBe(`${values.metrics.address}:${values.metrics.port}`);
  });

  it('mounts the registry credentials and CA Secrets named in values', () => {
    const vols = Object.fromEntries((ds.spec.template.spec.volumes ?? []).map((v: any) => [v.name, v]));
    if (values.registry.auth.existingSecret) expect(vols['registry-auth'].secret.secretName).toBe(values.registry.auth.existingSecret);
    else expect(vols['registry-auth']).toBeUndefined();
    if (values.registry.caSecret.name) expect(vols['registry-ca'].secret.secretName).toBe(values.registry.caSecret.name);
    else expect(vols['registry-ca']).toBeUndefined();
  });

  it('exposes metrics through a Service (and a ServiceMonitor when asked) that reach the follow port', () => {
    const pod = ds.spec.template.spec as PodSpec;
    const follow = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.args?.[1] === 'follow');
    checkServiceInvariants(objects, ds, follow);
    expect(objects.some((o) => o.kind === 'Service')).toBe(values.metrics.enabled && values.artifacts.follow.enabled);
    expect(objects.some((o) => o.kind === 'ServiceMonitor')).toBe(values.metrics.enabled && values.metrics.serviceMonitor.enabled);
  });

  it('applies the security context, scheduling and image from values', () => {
    const spec = ds.spec.template.spec;
    const ours = [...(spec.initContainers ?? []), ...spec.containers].filter((c: any) => c.args?.[0] === 'artifact');
    const wantNonRoot = values.podSecurityContext.runAsNonRoot || values.securityContext.runAsNonRoot;
    for (const c of ours) {
      const eff = { ...spec.securityContext, ...c.securityContext };
      if (wantNonRoot) {
        expect(eff.runAsNonRoot, `${c.name} runAsNonRoot`).toBe(true);
        expect(eff.runAsUser, `${c.name} runs as a non-root UID`).toBeGreaterThan(0);
      }
      expect(c.securityContext.readOnlyRootFilesystem).toBe(values.securityContext.readOnlyRootFilesystem);
      const tag = values.image.tag || parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')).appVersion;
      expect(c.image).toBe(`${values.image.registry}/${values.image.repository}:${tag}`);
    }
    expect(spec.tolerations ?? []).toEqual(values.tolerations);
    expect(spec.nodeSelector ?? {}).toEqual(values.nodeSelector);
    expect(spec.priorityClassName ?? '').toBe(values.priorityClassName);
  });
});

describe('default values', () => {
  it('tolerate every taint, so rules reach every node', async () => {
    const r = await helmTemplate();
    expect(r.code, r.stderr).toBe(0);
    const ds = parseManifests(r.stdout).find((o) => o.kind === 'DaemonSet')!;
    expect(ds.spec.template.spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(ds.spec.template.spec.nodeSelector).toBeUndefined();
  });

  it('roll the pods when the config changes (checksum annotation), so install runs for new refs', async () => {
    const a = parseManifests((await helmTemplate()).stdout).find((o) => o.kind === 'DaemonSet')!;
    const b = parseManifests((await helmTemplate({ setJson: ['artifacts.install.refs=["other-rules:1"]'] })).stdout).find((o) => o.kind === 'DaemonSet')!;
    const sumA = a.spec.template.metadata.annotations['checksum/config'];
    expect(sumA).toMatch(/^[a-f0-9]{64}$/);
    expect(b.spec.template.metadata.annotations['checksum/config']).not.toBe(sumA);
    // A rotated verification key rolls the pods too (the key lives beside the config, not in it).
    const pem = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const withKey = async (key: string) =>
      parseManifests((await helmTemplate({ setJson: [`registry.cosignPublicKeys=${JSON.stringify([key])}`] })).stdout).find((o) => o.kind === 'DaemonSet')!.spec.template.metadata.annotations['checksum/config'];
    const k1 = await withKey(pem());
    const k2 = await withKey(pem());
    expect(k1).toMatch(/^[a-f0-9]{64}$/);
    expect(k1).not.toBe(sumA);
    expect(k2).not.toBe(k1);
  });

  it('render a startupProbe on /readyz outside native-sidecar mode only when asked', async () => {
    const plain = parseManifests((await helmTemplate()).stdout).find((o) => o.kind === 'DaemonSet')!;
    expect(plain.spec.template.spec.containers[0].startupProbe).toBeUndefined();
    const asked = parseManifests((await helmTemplate({ set: ['probes.startup.enabled=true'] })).stdout).find((o) => o.kind === 'DaemonSet')!;
    expect(asked.spec.template.spec.containers[0].startupProbe.httpGet.path).toBe('/readyz');
  });
});

describe('other combinations of values', () => {
  it('follow only (install disabled): no init container, follow still works', async () => {
    const r = await helmTemplate({ set: ['artifacts.install.enabled=false'] });
    expect(r.code, r.stderr).toBe(0);
    const objects = parseManifests(r.stdout);
    for (const obj of objects) validateManifest(obj);
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    expect(ds.spec.template.spec.initContainers).toBeUndefined();
    const inv = checkPodInvariants(ds.spec.template.spec as PodSpec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.follow).toBeDefined();
  });

  it('IPv6 listen address renders a bracketed --metrics-addr', async () => {
    const r = await helmTemplate({ set: ['metrics.address=::'] });
    expect(r.code, r.stderr).toBe(0);
    const objects = parseManifests(r.stdout);
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    const inv = checkPodInvariants(ds.spec.template.spec as PodSpec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.config.follow.metricsAddr).toBe('[::]:9376');
  });

  it('registry.auth.gcp and hostPaths.dirs reach the config file, and the CLI accepts it', async () => {
    const r = await helmTemplate({ setJson: ['registry.auth.gcp=["us-docker.pkg.dev"]', 'hostPaths.dirs={"asset":"/etc/diginfra/assets"}', 'allowedTypes=["rulesfile","asset"]'] });
    expect(r.code, r.stderr).toBe(0);
    const objects = parseManifests(r.stdout);
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    const inv = checkPodInvariants(ds.spec.template.spec as PodSpec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.config.registry.auth).toEqual({ gcp: [{ registry: 'us-docker.pkg.dev' }] });
    expect(inv.config.install.dirs).toEqual({ asset: '/etc/diginfra/assets' });
    expect(inv.config.follow.dirs).toEqual({ asset: '/etc/diginfra/assets' });
    const volume = ds.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'dir-asset');
    expect(volume.hostPath.path).toBe('/etc/diginfra/assets');
    for (const c of [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers]) {
      expect(c.volumeMounts.find((m: { name: string }) => m.name === 'dir-asset')?.mountPath, c.name).toBe('/etc/diginfra/assets');
    }
  });

  it('refuses a type directory that another mount already is (Kubernetes refuses duplicate mountPaths)', async () => {
    const same = await helmTemplate({ setJson: ['hostPaths.dirs={"asset":"/etc/diginfra"}'] });
    expect(same.code).not.toBe(0);
    expect(same.stderr).toContain('hostPaths.dirs.asset is /etc/diginfra, which hostPaths.rulesfilesDir already mounts');
    const shared = await helmTemplate({ setJson: ['hostPaths.dirs={"asset":"/x","policy":"/x"}'] });
    expect(shared.code).not.toBe(0);
    expect(shared.stderr).toContain('hostPaths.dirs.policy is /x, which hostPaths.dirs.asset already mounts');
    // gs:// and s3:// indexes pass the schema.
    const cloud = await helmTemplate({ setJson: ['indexes=[{"name":"a","url":"gs://bucket/index.yaml"},{"name":"b","url":"s3://bucket/index.yaml"}]'] });
    expect(cloud.code, cloud.stderr).toBe(0);
  });

  it('refuses a pod with nothing of ours to run', async () => {
    const r = await helmTemplate({
      set: ['artifacts.install.enabled=false', 'artifacts.follow.enabled=false'],
      setJson: ['extraContainers=[{"name":"diginfra","image":"docker.io/diginfra/diginfra:0.40.0"}]'],
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('nothing to run');
  });
});

describe('values.schema.json rejects bad values at helm template time', () => {
  const cases: { name: string; set?: string[]; setJson?: string[]; where: string; says: RegExp }[] = [
    { name: 'a typo in a top-level key', set: ['metric.enabled=true'], where: "at ''", says: /additional propert(y|ies) 'metric' not allowed/ },
    { name: 'a typo in a nested key', set: ['artifacts.follow.evry=1h'], where: "at '/artifacts/follow'", says: /'evry' not allowed/ },
    { name: 'a typo under hostPaths', set: ['hostPaths.rulesDir=/x'], where: "at '/hostPaths'", says: /'rulesDir' not allowed/ },
    { name: 'a string for the metrics port', set: ['metrics.port=abc'], where: "at '/metrics/port'", says: /got string, want integer/ },
    { name: 'a string instead of a list of refs', set: ['artifacts.install.refs=diginfra-rules'], where: "at '/artifacts/install/refs'", says: /got string, want array/ },
    { name: 'a number for enabled', setJson: ['artifacts.follow.enabled=1'], where: "at '/artifacts/follow/enabled'", says: /want boolean/ },
    { name: 'an unparsable artifact ref', setJson: ['artifacts.install.refs=["Bad//Ref:"]'], where: "at '/artifacts/install/refs/0'", says: /'Bad\/\/Ref:' does not match pattern/ },
    { name: 'a ref with a URL scheme', setJson: ['artifacts.follow.refs=["https://ghcr.io/diginfra/rules:1"]'], where: "at '/artifacts/follow/refs/0'", says: /does not match pattern/ },
    { name: 'a ref with a short digest', setJson: ['artifacts.install.refs=["ghcr.io/diginfra/rules@sha256:abc"]'], where: "at '/artifacts/install/refs/0'", says: /does not match pattern/ },
    { name: 'a ref with an empty tag', setJson: ['artifacts.install.refs=["ghcr.io/diginfra/rules:"]'], where: "at '/artifacts/install/refs/0'", says: /does not match pattern/ },
    { name: 'an upper-case repository', setJson: ['artifacts.install.refs=["ghcr.io/Diginfra/rules:1"]'], where: "at '/artifacts/install/refs/0'", says: /does not match pattern/ },
    { name: 'an interval that is not a duration', set: ['artifacts.follow.every=6 hours'], where: "at '/artifacts/follow/every'", says: /does not match pattern/ },
    { name: 'an artifact type that is not one', setJson: ['allowedTypes=["Rules_File"]'], where: "at '/allowedTypes/0'", says: /does not match pattern/ },
    { name: 'a dirs entry for rulesfile (it has rulesfilesDir)', setJson: ['hostPaths.dirs={"rulesfile":"/etc/x"}'], where: "invalid propertyName 'rulesfile'", says: /'not' failed/ },
    { name: 'a relative dirs path', setJson: ['hostPaths.dirs={"asset":"etc/assets"}'], where: "at '/hostPaths/dirs/asset'", says: /does not match pattern/ },
    { name: 'a relative host path', set: ['hostPaths.pluginsDir=usr/share/diginfra/plugins'], where: "at '/hostPaths/pluginsDir'", says: /does not match pattern/ },
    { name: 'an invalid Secret name', set: ['registry.auth.existingSecret=Not_A_Name'], where: "at '/registry/auth/existingSecret'", says: /'Not_A_Name' does not match pattern/ },
    { name: 'a plain-HTTP entry with a scheme', setJson: ['registry.plainHttp=["http://mirror:5000"]'], where: "at '/registry/plainHttp/0'", says: /does not match pattern/ },
    { name: 'jitter above 1', set: ['artifacts.follow.jitter=2'], where: "at '/artifacts/follow/jitter'", says: /maximum/ },
    { name: 'native sidecar without a regular container', set: ['artifacts.follow.nativeSidecar=true'], where: "at '/extraContainers'", says: /minItems: got 0, want 1/ },
    { name: 'both engine.version and engine.versionsUrl', set: ['engine.version=0.40.0', 'engine.versionsUrl=http://localhost:8765/versions'], where: "at '/engine/versionsUrl'", says: /maxLength: got \d+, want 0/ },
  ];

  it.each(cases)('$name', async ({ set, setJson, where, says }) => {
    const r = await helmTemplate({ ...(set && { set }), ...(setJson && { setJson }) });
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toContain(SCHEMA_ERROR);
    expect(r.stderr).toContain(where);
    expect(r.stderr).toMatch(says);
  });
});

/** Refs of every form the CLI parses, and a few it refuses (see src/reference/reference.ts). */
const DIGEST = `sha256:${'a'.repeat(64)}`;
const GOOD_REFS = [
  'k8saudit', 'k8saudit:0.7', 'diginfra-rules:3', 'diginfra-rules:latest', 'cloudtrail:0.9.0-rc1', 'my_rules.v2:1',
  'diginfra::k8saudit', 'Internal::k8saudit:1.2', 'ghcr.io/diginfra/rules/diginfra-rules', 'ghcr.io/diginfra/rules/diginfra-rules:3',
  `ghcr.io/diginfra/plugins/k8saudit@${DIGEST}`, `ghcr.io/x:1@${DIGEST}`, 'localhost:5000/rules:v1', 'localhost/rules', 'registry.internal.example:5443/a/b/c:1',
  'diginfra/rules:1', 'library/alpine', 'a__b/c-d.e:x', '[fe80:0:0:0:0:0:0:1]:5000/x:1', 'REGISTRY.example/x',
];
const BAD_REFS = [
  'Bad//Ref:', '', 'UPPER', 'name:', ':tag', 'a:b:c', 'idx::', '::name', 'idx::a/b', 'name@' + DIGEST, 'https://ghcr.io/x',
  'ghcr.io/x:', 'ghcr.io/x@sha256:abc', 'ghcr.io/X/y', 'ghcr.io//x', '/x', 'x/', 'foo:bar/x',
  '-bad.io/x', 'a..b/x', 'a__b.c/x', 'ghcr.io/x:-1', ' k8saudit', 'k8s audit',
];

describe('the artifact ref pattern in values.schema.json', () => {
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'));
  const pattern = new RegExp(schema.definitions.artifactRef.pattern);
  const parses = (ref: string) => {
    try {
      parseArtifactRef(ref);
      return true;
    } catch {
      return false;
    }
  };

  it.each(GOOD_REFS)('accepts %s, which the CLI parses', (ref) => {
    expect(parses(ref)).toBe(true);
    expect(pattern.test(ref)).toBe(true);
  });

  it.each(BAD_REFS)('rejects %j, which the CLI refuses', (ref) => {
    // " k8saudit" is trimmed by the CLI; the chart is stricter and refuses the space.
    if (ref.trim() === ref) expect(parses(ref)).toBe(false);
    expect(pattern.test(ref)).toBe(false);
  });

  it('agrees with helm (Go regexp) on all of them', async () => {
    const ok = await helmTemplate({ setJson: [`artifacts.install.refs=${JSON.stringify(GOOD_REFS)}`] });
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await helmTemplate({ setJson: [`artifacts.install.refs=${JSON.stringify(BAD_REFS)}`] });
    expect(bad.code).not.toBe(0);
    for (const i of BAD_REFS.keys()) expect(bad.stderr).toContain(`at '/artifacts/install/refs/${i}'`);
  });
});

describe('values.schema.json, values.yaml and README.md', () => {
  const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'));
  const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
  const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  /** Kubernetes types taken as they are (the API schema checks them in the rendered objects). */
  const PASSTHROUGH = new Set([
    'affinity.nodeAffinity', 'affinity.podAffinity', 'affinity.podAntiAffinity', 'extraEnv[].valueFrom', 'extraVolumes[]', 'extraContainers[]',
    // The free-form config is checked by `diginfractl config validate` in the pod; Helm's globals belong to a parent chart.
    'config', 'global',
    // Per-container additions to the shared values: Kubernetes types, empty by default.
    'artifacts.install.env[].valueFrom', 'artifacts.follow.env[].valueFrom', 'artifacts.install.securityContext', 'artifacts.follow.securityContext',
  ]);

  const resolve = (s: any): any => (s?.$ref ? schema.definitions[s.$ref.replace('#/definitions/', '')] : s);

  it('forbids unknown keys in every object it defines', () => {
    const open: string[] = [];
    const walk = (s: any, path: string) => {
      s = resolve(s);
      if (!s || typeof s !== 'object') return;
      for (const alt of s.anyOf ?? []) walk(alt, path);
      if (s.type === 'array') return walk(s.items, `${path}[]`);
      if (s.type !== 'object') return;
      if (PASSTHROUGH.has(path)) return;
      if (s.properties) {
        if (s.additionalProperties !== false) open.push(path || '(root)');
        for (const [k, sub] of Object.entries(s.properties)) walk(sub, path ? `${path}.${k}` : k);
      } else if (s.additionalProperties === undefined || s.additionalProperties === true) {
        open.push(path);
      }
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  /** Leaf paths of values.yaml: maps recurse, anything else (lists, empty maps, scalars) is a leaf. */
  const leaves: string[] = [];
  const collect = (v: any, path: string) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
      for (const [k, sub] of Object.entries(v)) collect(sub, path ? `${path}.${k}` : k);
    } else {
      leaves.push(path);
    }
  };
  collect(values, '');

  it('declares every key of values.yaml', () => {
    const missing = leaves.filter((p) => {
      let s: any = schema;
      for (const k of p.split('.')) {
        s = resolve(s);
        if (!s?.properties?.[k] && !(s?.additionalProperties && typeof s.additionalProperties === 'object')) return true;
        s = s.properties?.[k] ?? s.additionalProperties;
      }
      return false;
    });
    expect(missing).toEqual([]);
  });

  it('gives a default in values.yaml for every key it declares', () => {
    const missing: string[] = [];
    const walk = (s: any, v: any, path: string) => {
      s = resolve(s);
      if (!s?.properties || PASSTHROUGH.has(path)) return;
      for (const [k, sub] of Object.entries(s.properties)) {
        const p = path ? `${path}.${k}` : k;
        if (v === undefined || !(k in v)) {
          missing.push(p);
          continue;
        }
        if (resolve(sub).type === 'object') walk(sub, v[k], p);
      }
    };
    // Optional Kubernetes fields may be left out of values.yaml: check the chart's own sections only.
    for (const key of ['image', 'serviceAccount', 'artifacts', 'engine', 'registry', 'hostPaths', 'metrics', 'probes', 'resources']) {
      walk(schema.properties[key], values[key], key);
    }
    expect(missing).toEqual([]);
  });

  it('README lists every value', () => {
    const missing = leaves.filter((p) => !readme.includes(`\`${p}\``));
    expect(missing).toEqual([]);
  });
});

describe('NOTES.txt', () => {
  it('tells where the rules go, which refs, and how to check the first sync', async () => {
    const r = await helm(['install', 'diginfractl', CHART_DIR, '--dry-run=client', '--namespace', 'diginfra', '--values', join(CI_DIR, 'private-registry-values.yaml')]);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stdout.slice(r.stdout.indexOf('NOTES:'));
    expect(notes).toContain('internal::k8saudit-rules:0.7');
    expect(notes).toContain('/etc/diginfra');
    expect(notes).toContain('kubectl -n diginfra logs daemonset/diginfractl -c install');
    expect(notes).toContain('/readyz');
    expect(notes).toMatch(/plugin is loaded only when\s+the engine restarts/);
  });
});

describe('embedded mode snippet in the chart README', () => {
  it('is a valid pod: install init container, follow native sidecar with a startupProbe, shared emptyDirs', () => {
    const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
    const m = /<!-- embedded-pod-example -->\s*```yaml\n([\s\S]*?)```/.exec(readme);
    expect(m, 'README has the embedded pod example').not.toBeNull();
    const objects = parseManifests(m![1]!);
    for (const obj of objects) validateManifest(obj);
    const pod = objects.find((o) => o.kind === 'Pod');
    expect(pod).toBeDefined();
    const spec = pod!.spec as PodSpec;
    const inv = checkPodInvariants(spec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.followIsNativeSidecar).toBe(true);
    const engine = spec.containers.find((c) => c.name === 'diginfra')!;
    expect(engine, 'the engine is the regular container').toBeDefined();
    const vols = Object.fromEntries((spec.volumes ?? []).map((v: any) => [v.name, v]));
    for (const dir of [inv.config.install.rulesfilesDir, inv.config.install.pluginsDir]) {
      const mount = engine.volumeMounts!.find((vm) => vm.mountPath === dir);
      expect(mount, `engine mounts ${dir}`).toBeDefined();
      expect(vols[mount!.name].emptyDir, `${dir} is a shared emptyDir`).toBeDefined();
      expect(inv.install!.volumeMounts!.find((vm) => vm.mountPath === dir)!.name).toBe(mount!.name);
    }
  });
});
