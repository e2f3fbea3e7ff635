/**
 * The chart's day-2 values, rendered with the real helm binary and checked against the Kubernetes
 * schemas: the Kubernetes versions it installs on, the knobs of each container, registry credentials
 * from Secrets, the free-form config (checked by the CLI's `config validate`), OpenShift's SCC, the
 * embedding mode, and the pull-through cache.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { CHART_DIR, ensureK8sTools, helm } from '../helpers/helm.js';
import { requireCli, runCli, cliEnv } from '../helpers/cli.js';
import { containerEnv } from './kubelet-env.js';
import { checkPodInvariants, helmTemplate, parseManifests, validateManifest, type Container, type K8sObject, type PodSpec } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
const CI = join(CHART_DIR, 'ci');

beforeAll(() => ensureK8sTools(), 120_000);

/** `helm template` for a cluster of the given version (what `helm install` reads from the API server). */
function templateFor(kubeVersion: string, args: string[] = []) {
  return helm(['template', 'diginfractl', CHART_DIR, '--namespace', 'diginfra', '--kube-version', kubeVersion, ...args]);
}

async function render(opts: Parameters<typeof helmTemplate>[0]): Promise<K8sObject[]> {
  const r = await helmTemplate(opts);
  expect(r.code, r.stderr).toBe(0);
  const objects = parseManifests(r.stdout);
  for (const o of objects) validateManifest(o);
  return objects;
}

function pod(objects: K8sObject[]): PodSpec {
  return objects.find((o) => o.kind === 'DaemonSet')!.spec.template.spec as PodSpec;
}

function container(spec: PodSpec, name: string): Container {
  const c = [...(spec.initContainers ?? []), ...spec.containers].find((x) => x.name === name);
  expect(c, `container ${name}`).toBeDefined();
  return c!;
}

describe('Kubernetes versions', () => {
  it('Chart.yaml accepts every maintained minor from 1.27 on', () => {
    const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'));
    expect(chart.kubeVersion).toBe('>=1.27.0-0');
  });

  it.each(['1.27.16', 'v1.28.15-eks-7f9249a', '1.29.0', '1.30.4', '1.31.1', '1.32.0', '1.33.2', '1.34.0', '1.35.0'])('renders on %s outside native-sidecar mode', async (version) => {
    const r = await templateFor(version);
    expect(r.code, r.stderr).toBe(0);
    expect(parseManifests(r.stdout).some((o) => o.kind === 'DaemonSet')).toBe(true);
  });

  it('refuses 1.26 (Chart.yaml)', async () => {
    const r = await templateFor('1.26.15');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('chart requires kubeVersion: >=1.27.0-0');
  });

  it.each(['1.27.16', 'v1.28.15-eks-7f9249a', '1.28.0'])('refuses native-sidecar mode on %s, and says what to do', async (version) => {
    const r = await templateFor(version, ['--values', join(CI, 'embedded-values.yaml')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('artifacts.follow.nativeSidecar=true needs Kubernetes 1.29 or later (native sidecar containers)');
    expect(r.stderr).toContain('set artifacts.follow.nativeSidecar=false');
  });

  it.each(['1.29.0', 'v1.29.2-gke.1060000', '1.35.0'])('renders native-sidecar mode on %s', async (version) => {
    const r = await templateFor(version, ['--values', join(CI, 'embedded-values.yaml')]);
    expect(r.code, r.stderr).toBe(0);
    const spec = pod(parseManifests(r.stdout));
    expect(spec.initContainers!.find((c) => c.name === 'follow')!.restartPolicy).toBe('Always');
  });
});

describe('per-container knobs', () => {
  it('shared values (extraEnv, securityContext, extraVolumeMounts) reach both containers alike', async () => {
    const spec = pod(await render({
      setJson: ['extraEnv=[{"name":"HTTPS_PROXY","value":"http://proxy:3128"}]', 'extraVolumeMounts=[{"name":"extra","mountPath":"/extra"}]', 'extraVolumes=[{"name":"extra","emptyDir":{}}]'],
    }));
    const install = container(spec, 'install');
    const follow = container(spec, 'follow');
    expect(install.env).toEqual(follow.env);
    expect(install.env).toContainEqual({ name: 'HTTPS_PROXY', value: 'http://proxy:3128' });
    expect(install.securityContext).toEqual(follow.securityContext);
    expect(install.volumeMounts).toEqual(follow.volumeMounts);
    expect(install.volumeMounts).toContainEqual({ name: 'extra', mountPath: '/extra' });
  });

  it('artifacts.install / artifacts.follow add env, envFrom, security context and mounts to their own container only', async () => {
    const objects = await render({ valuesFiles: [join(CI, 'operations-values.yaml')] });
    const spec = pod(objects);
    const install = container(spec, 'install');
    const follow = container(spec, 'follow');
    const value = (c: Container, name: string) => c.env!.filter((e) => e.name === name).map((e) => e.value);
    // install's own NO_PROXY replaces the shared one (one entry); follow keeps the shared one.
    expect(value(install, 'NO_PROXY')).toEqual(['.svc,.cluster.local,registry.internal.example']);
    expect(value(follow, 'NO_PROXY')).toEqual(['.svc,.cluster.local']);
    expect(value(install, 'HTTPS_PROXY')).toEqual(['http://proxy.internal.example:3128']);
    expect((install as any).envFrom).toEqual([{ secretRef: { name: 'install-extra-env', optional: true } }]);
    expect((follow as any).envFrom).toBeUndefined();
    // The container's keys are merged over the shared security context.
    expect(install.securityContext).toEqual({
      allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] }, seLinuxOptions: { type: 'spc_t' },
    });
    expect(follow.volumeMounts).toContainEqual({ name: 'validators', mountPath: '/opt/validators', readOnly: true });
    expect(install.volumeMounts!.some((m) => m.name === 'validators')).toBe(false);
    checkPodInvariants(spec, objects.filter((o) => o.kind === 'ConfigMap'));
  });

  it('a per-container security context may loosen a shared key (it wins)', async () => {
    const spec = pod(await render({ setJson: ['artifacts.follow.securityContext={"readOnlyRootFilesystem":false}'] }));
    expect(container(spec, 'follow').securityContext.readOnlyRootFilesystem).toBe(false);
    expect(container(spec, 'install').securityContext.readOnlyRootFilesystem).toBe(true);
  });
});

describe('registry credentials from Secrets', () => {
  const secrets = {
    'internal-robot': { username: 'robot$ci', password: 'p@ss$(not-a-ref)' },
    'harbor-robot': { name: 'harbor-user', token: 'tok-123' },
    'corp-oauth': { clientSecret: 'cs-456' },
  };

  it('reach the CLI as DIGINFRACTL_REGISTRY_AUTH_BASIC / _OAUTH once the kubelet fills them in, with no secret in the pod spec', async () => {
    requireCli('config', ['show']);
    const objects = await render({ valuesFiles: [join(CI, 'operations-values.yaml')] });
    const text = JSON.stringify(objects);
    for (const values of Object.values(secrets)) for (const v of Object.values(values)) expect(text).not.toContain(v);
    const install = container(pod(objects), 'install');
    const env = containerEnv(install, { secrets });
    expect(env.DIGINFRACTL_REGISTRY_AUTH_BASIC).toBe('registry.internal.example,robot$ci,p@ss$(not-a-ref);harbor.internal.example:8443,harbor-user,tok-123');
    expect(env.DIGINFRACTL_REGISTRY_AUTH_OAUTH).toBe('artifacts.corp.example,diginfractl,cs-456,https://login.corp.example/oauth2/token');
    // The CLI reads them as config (config show masks the secrets).
    const dir = await mkdtemp(join(tmpdir(), 'diginfractl-auth-env-'));
    const config = join(dir, 'diginfractl.yaml');
    await writeFile(config, objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'diginfractl')!.data['diginfractl.yaml']);
    const base = await cliEnv();
    const r = await runCli(['config', 'show', '-o', 'json', '--config', config], {
      env: { ...base, DIGINFRACTL_REGISTRY_AUTH_BASIC: env.DIGINFRACTL_REGISTRY_AUTH_BASIC, DIGINFRACTL_REGISTRY_AUTH_OAUTH: env.DIGINFRACTL_REGISTRY_AUTH_OAUTH },
    });
    expect(r.code, r.stderr).toBe(0);
    const shown = JSON.parse(r.stdout);
    const auth = (shown.config ?? shown).registry.auth;
    expect(auth.basic.map((e: any) => [e.registry, e.user])).toEqual([['registry.internal.example', 'robot$ci'], ['harbor.internal.example:8443', 'harbor-user']]);
    expect(auth.oauth.map((e: any) => [e.registry, e.clientID, e.tokenURL])).toEqual([['artifacts.corp.example', 'diginfractl', 'https://login.corp.example/oauth2/token']]);
    expect(r.stdout).not.toContain('tok-123');
    expect(r.stdout).not.toContain('cs-456');
  });

  it('a client ID may come from the Secret too', async () => {
    const spec = pod(await render({ setJson: ['registry.auth.oauth=[{"registry":"a.example","tokenURL":"https://t.example/token","clientIDKey":"id","secretName":"s"}]'] }));
    const env = containerEnv(container(spec, 'follow'), { secrets: { s: { id: 'client-1', clientSecret: 'x' } } });
    expect(env.DIGINFRACTL_REGISTRY_AUTH_OAUTH).toBe('a.example,client-1,x,https://t.example/token');
  });

  it('refuses an entry both in registry.auth and in config (the variable would replace the file\'s list)', async () => {
    const r = await helmTemplate({ setJson: ['registry.auth.basic=[{"registry":"a.example","secretName":"s"}]', 'config={"registry":{"auth":{"basic":[{"registry":"b.example","user":"u","password":"p"}]}}}'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('registry.auth.basic and config.registry.auth.basic are both set');
  });

  it.each([
    ['an OAuth entry with both clientID and clientIDKey', 'registry.auth.oauth=[{"registry":"a.example","tokenURL":"https://t.example/token","clientID":"x","clientIDKey":"id","secretName":"s"}]'],
    ['a basic entry without secretName', 'registry.auth.basic=[{"registry":"a.example"}]'],
    ['a client ID with a comma (the variable separates fields with it)', 'registry.auth.oauth=[{"registry":"a.example","tokenURL":"https://t.example/token","clientID":"a,b","secretName":"s"}]'],
  ])('the schema refuses %s', async (_, json) => {
    const r = await helmTemplate({ setJson: [json] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
  });
});

describe('free-form config', () => {
  it('is merged over the generated file (maps merge, lists and scalars replace) and checked by `config validate` before install', async () => {
    requireCli('config', ['validate']);
    const objects = await render({ setJson: ['config={"follow":{"every":"1h"},"registry":{"mirrors":{"docker.io":"mirror.internal:5000"}},"cacheMaxAge":"720h"}', 'registry.mirrors={"ghcr.io":"mirror.internal:5000"}'] });
    const spec = pod(objects);
    const cm = objects.find((o) => o.kind === 'ConfigMap')!;
    const inv = checkPodInvariants(spec, [cm]);
    expect(inv.config.follow.every).toBe('1h');
    expect(inv.config.follow.refs).toEqual(['diginfra-rules:3']);
    expect(inv.config.registry.mirrors).toEqual({ 'ghcr.io': 'mirror.internal:5000', 'docker.io': 'mirror.internal:5000' });
    expect(inv.config.cacheMaxAge).toBe('720h');
    // The check runs first, on the file both containers read.
    const check = spec.initContainers![0]!;
    expect(check.name).toBe('config-check');
    expect(check.args).toEqual(['config', 'validate', inv.configPath, '--log-level', 'info']);
    expect(check.volumeMounts!.find((m) => m.mountPath === '/etc/diginfractl')!.name).toBe(inv.install!.volumeMounts!.find((m) => m.mountPath === '/etc/diginfractl')!.name);
    const ok = await validateRendered(cm);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/: valid$/m);
  });

  it('that is wrong fails the config check init container, naming the key (the pod does not start)', async () => {
    const objects = await render({ setJson: ['config={"follow":{"jitter":3},"instal":{"refs":[]}}'] });
    const bad = await validateRendered(objects.find((o) => o.kind === 'ConfigMap')!);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('follow.jitter');
    expect(bad.stderr).toContain('instal');
  });

  it('unset: no config check init container (the rendering stays as it was)', async () => {
    const spec = pod(await render({}));
    expect(spec.initContainers!.map((c) => c.name)).toEqual(['install']);
  });
});

/** Runs `diginfractl config validate` on the rendered config file, as the config-check container does. */
async function validateRendered(cm: K8sObject) {
  const dir = await mkdtemp(join(tmpdir(), 'diginfractl-config-check-'));
  for (const [key, text] of Object.entries<string>(cm.data)) await writeFile(join(dir, key), text);
  return runCli(['config', 'validate', join(dir, 'diginfractl.yaml')], { env: await cliEnv() });
}

describe('OpenShift SecurityContextConstraints', () => {
  it('is off by default', async () => {
    expect((await render({})).some((o) => o.kind === 'SecurityContextConstraints')).toBe(false);
  });

  it('lets the chart\'s ServiceAccount run the pods: the volumes they use, any UID, nothing privileged', async () => {
    const objects = await render({ set: ['openshift.scc.create=true'], setJson: ['extraVolumes=[{"name":"x","projected":{"sources":[]}}]', 'extraVolumeMounts=[{"name":"x","mountPath":"/x"}]'] });
    const scc = objects.find((o) => o.kind === 'SecurityContextConstraints')!;
    expect(scc.metadata.namespace, 'cluster-scoped').toBeUndefined();
    expect(scc.metadata.name).toBe('diginfra-diginfractl');
    expect(scc.users).toEqual(['system:serviceaccount:diginfra:diginfractl']);
    const spec = pod(objects);
    const kinds = new Set((spec.volumes ?? []).map((v) => Object.keys(v).find((k) => k !== 'name')!));
    expect(new Set(scc.volumes)).toEqual(kinds);
    expect(scc.volumes).toContain('hostPath');
    expect(scc.allowHostDirVolumePlugin).toBe(true);
    expect(scc.allowPrivilegedContainer).toBe(false);
    expect(scc.allowPrivilegeEscalation).toBe(false);
    expect(scc.requiredDropCapabilities).toEqual(['ALL']);
    expect(scc.runAsUser.type).toBe('RunAsAny');
    // Each container asks for nothing the SCC forbids.
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      expect(c.securityContext.privileged ?? false).toBe(false);
      expect(c.securityContext.capabilities.add ?? []).toEqual([]);
    }
  });

  it('without hostPaths allows no host directories', async () => {
    const scc = (await render({ set: ['openshift.scc.create=true', 'hostPaths.enabled=false'] })).find((o) => o.kind === 'SecurityContextConstraints')!;
    expect(scc.allowHostDirVolumePlugin).toBe(false);
    expect(scc.volumes).not.toContain('hostPath');
  });
});

describe('embedding.enabled without a parent chart', () => {
  it('renders the ConfigMap (and the alerts) but no DaemonSet, ServiceAccount, Service or ServiceMonitor', async () => {
    const objects = await render({ set: ['embedding.enabled=true', 'prometheusRule.enabled=true', 'metrics.serviceMonitor.enabled=true'] });
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'PrometheusRule']);
  });
});

describe('pull-through cache', () => {
  it('is off by default', async () => {
    expect((await render({})).some((o) => o.kind === 'Deployment')).toBe(false);
  });

  it('runs CNCF distribution in proxy mode behind a Service, and points the agents\' mirror at it', async () => {
    const objects = await render({ set: ['pullThroughCache.enabled=true', 'pullThroughCache.remoteURL=https://ghcr.io', 'pullThroughCache.remoteAuthSecret=ghcr-pull'] });
    const deploy = objects.find((o) => o.kind === 'Deployment')!;
    const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'diginfractl-cache')!;
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'diginfractl-cache')!;
    const registryConfig = parseYaml(cm.data['config.yml']);
    expect(registryConfig.proxy).toEqual({ remoteurl: 'https://ghcr.io' });
    expect(registryConfig.storage.filesystem.rootdirectory).toBe('/var/lib/registry');
    const podSpec = deploy.spec.template.spec;
    expect(podSpec.enableServiceLinks, 'no REGISTRY_* service variables for distribution to misread').toBe(false);
    const registry = podSpec.containers[0];
    expect(registry.image).toBe('docker.io/library/registry:2.8.3');
    expect(registry.env.map((e: any) => [e.name, e.valueFrom.secretKeyRef.name])).toEqual([['REGISTRY_PROXY_USERNAME', 'ghcr-pull'], ['REGISTRY_PROXY_PASSWORD', 'ghcr-pull']]);
    expect(podSpec.volumes.find((v: any) => v.name === 'storage').emptyDir).toEqual({ sizeLimit: '10Gi' });
    // The Service selects the cache's pods, and the DaemonSet's selector does not.
    const labels = deploy.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(labels[k]).toBe(v);
    const ds = objects.find((o) => o.kind === 'DaemonSet')!;
    expect(Object.entries<string>(ds.spec.selector.matchLabels).every(([k, v]) => labels[k] === v)).toBe(false);
    expect(svc.spec.ports[0].port).toBe(5000);
    // The agents send ghcr.io references to the Service, over plain HTTP inside the cluster.
    const inv = checkPodInvariants(ds.spec.template.spec, objects.filter((o) => o.kind === 'ConfigMap'));
    expect(inv.config.registry.mirrors).toEqual({ 'ghcr.io': 'diginfractl-cache.diginfra.svc.cluster.local:5000' });
    expect(inv.config.registry.plainHttp).toEqual(['diginfractl-cache.diginfra.svc.cluster.local:5000']);
  });

  it('keeps the cache on a claim when asked, replacing the pod rather than running two on one ReadWriteOnce volume', async () => {
    const objects = await render({ set: ['pullThroughCache.enabled=true', 'pullThroughCache.persistence.enabled=true', 'pullThroughCache.persistence.storageClass=fast', 'pullThroughCache.registryHost=registry.example'] });
    const pvc = objects.find((o) => o.kind === 'PersistentVolumeClaim')!;
    expect(pvc.spec).toEqual({ accessModes: ['ReadWriteOnce'], storageClassName: 'fast', resources: { requests: { storage: '10Gi' } } });
    const deploy = objects.find((o) => o.kind === 'Deployment')!;
    expect(deploy.spec.strategy).toEqual({ type: 'Recreate' });
    expect(deploy.spec.template.spec.volumes.find((v: any) => v.name === 'storage').persistentVolumeClaim.claimName).toBe(pvc.metadata.name);
    const config = parseYaml(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'diginfractl')!.data['diginfractl.yaml']);
    expect(Object.keys(config.registry.mirrors)).toEqual(['registry.example']);
  });

  it('refuses to replace a mirror registry.mirrors already sets for the same host', async () => {
    const r = await helmTemplate({ set: ['pullThroughCache.enabled=true'], setJson: ['registry.mirrors={"ghcr.io":"mirror.internal:5000"}'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('registry.mirrors already sends ghcr.io to mirror.internal:5000');
  });
});
