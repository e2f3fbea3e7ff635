/**
 * Shared checks for the Kubernetes tests: render the chart, parse manifests, validate each object against
 * the Kubernetes API schemas (kubernetes-models), and assert the invariants that make the pod work.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { expect } from 'vitest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Secret } from 'kubernetes-models/v1/Secret';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { SecurityContextConstraints } from './openshift-scc.js';
import { CHART_DIR, helm } from '../helpers/helm.js';
import { parseArtifactRef } from '../../src/reference/reference.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: any }; [k: string]: any };

type ModelClass = { new (data: any): { validate(): void }; prototype: { validate(): void } };

/** apiVersion/kind -> kubernetes-models class. An object of any other kind fails the test. */
const MODELS: Record<string, ModelClass> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Pod': Pod,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Secret': Secret,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'security.openshift.io/v1/SecurityContextConstraints': SecurityContextConstraints,
};

/** Renders the chart with `helm template`; the result keeps the exit code and stderr. */
export function helmTemplate(opts: { valuesFiles?: string[]; set?: string[]; setJson?: string[]; release?: string; namespace?: string } = {}) {
  const args = ['template', opts.release ?? 'diginfractl', CHART_DIR, '--namespace', opts.namespace ?? 'diginfra'];
  for (const f of opts.valuesFiles ?? []) args.push('--values', f);
  for (const s of opts.set ?? []) args.push('--set', s);
  for (const s of opts.setJson ?? []) args.push('--set-json', s);
  return helm(args);
}

/** Splits multi-document YAML into objects, dropping empty documents; a YAML error fails. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

/**
 * Keys of `obj` that the API schema does not know. kubernetes-models' generated validators accept unknown
 * fields (the API server would drop them, or reject them under strict validation), so the validator runs
 * once more over a Proxy that records which keys it reads: it reads every key its schema declares, and
 * enumerates maps (labels, resources) whole. Any key it never read is not in the schema: a typo.
 */
export function unknownFields(obj: K8sObject, Model: ModelClass): string[] {
  const records = new Map<string, { value: object; seen: Set<string>; enumerated: boolean }>();
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown, path: string): unknown => {
    if (value === null || typeof value !== 'object') return value;
    const cached = proxies.get(value);
    if (cached) return cached;
    const record = records.get(path) ?? { value, seen: new Set<string>(), enumerated: false };
    records.set(path, record);
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key !== 'string' || !Object.hasOwn(target, key)) return v;
        record.seen.add(key);
        return wrap(v, `${path}/${key}`);
      },
      ownKeys(target) {
        record.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  Model.prototype.validate.call(wrap(obj, ''));
  const unknown: string[] = [];
  for (const [path, { value, seen, enumerated }] of records) {
    if (enumerated || Array.isArray(value)) continue;
    for (const key of Object.keys(value)) if (!seen.has(key)) unknown.push(`${path}/${key}`);
  }
  return unknown;
}

/** Validates one object against its Kubernetes API schema, strictly (unknown fields fail too). */
export function validateManifest(obj: K8sObject): void {
  const id = `${obj.apiVersion}/${obj.kind}`;
  const Model = MODELS[id];
  if (!Model) throw new Error(`${id} ${obj.metadata?.name}: no schema known to the tests for this kind`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${id} ${obj.metadata?.name} is not a valid ${obj.kind}: ${(err as Error).message}`);
  }
  const unknown = unknownFields(obj, Model);
  if (unknown.length > 0) throw new Error(`${id} ${obj.metadata?.name} has fields the API does not know: ${unknown.join(', ')}`);
}

/** Deep merge the way Helm merges values files: maps merge, everything else (lists too) replaces. */
export function mergeValues(base: any, over: any): any {
  if (!isMap(base) || !isMap(over)) return over === undefined ? base : over;
  const out: any = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeValues(base[k], v) : v;
  return out;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The chart's values.yaml merged with the given values files. */
export function effectiveValues(valuesFiles: string[]): any {
  let values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
  for (const f of valuesFiles) values = mergeValues(values, parseYaml(readFileSync(f, 'utf8')) ?? {});
  return values;
}

/** The keys of the config file, from src/config/types.ts. */
const CONFIG_KEYS = {
  top: ['indexes', 'registry', 'install', 'follow', 'cacheDir', 'cacheMaxAge', 'verify'],
  registry: ['plainHttp', 'insecureSkipTlsVerify', 'caFiles', 'mirrors', 'authFile', 'cosignKeys', 'allowed', 'trustedRoot', 'auth'],
  install: ['refs', 'rulesfilesDir', 'pluginsDir', 'resolveDeps', 'allowedTypes', 'platform', 'engineVersion', 'lockfile', 'dirs'],
  follow: ['refs', 'every', 'cron', 'jitter', 'rulesfilesDir', 'pluginsDir', 'stateDir', 'allowedTypes', 'engineVersion',
    'engineVersionsUrl', 'validateCmd', 'metricsAddr', 'dirs'],
  index: ['name', 'url', 'added'],
};

/** Checks a parsed config file against the shape of src/config/types.ts; returns it typed loosely. */
export function checkConfigShape(config: any): void {
  expect(isMap(config), 'config file is a YAML map').toBe(true);
  const onlyKeys = (obj: any, allowed: string[], where: string) => {
    for (const k of Object.keys(obj)) expect(allowed, `${where} has unknown key "${k}"`).toContain(k);
  };
  onlyKeys(config, CONFIG_KEYS.top, 'config');
  expect(Array.isArray(config.indexes), 'indexes is a list').toBe(true);
  for (const ix of config.indexes) {
    onlyKeys(ix, CONFIG_KEYS.index, 'indexes[]');
    expect(typeof ix.name).toBe('string');
    expect(typeof ix.url).toBe('string');
  }
  onlyKeys(config.registry, CONFIG_KEYS.registry, 'registry');
  for (const k of ['plainHttp', 'insecureSkipTlsVerify']) expect(Array.isArray(config.registry[k]), `registry.${k}`).toBe(true);
  for (const k of ['caFiles', 'mirrors']) expect(isMap(config.registry[k]), `registry.${k}`).toBe(true);
  onlyKeys(config.install, CONFIG_KEYS.install, 'install');
  onlyKeys(config.follow, CONFIG_KEYS.follow, 'follow');
  for (const section of ['install', 'follow']) {
    const s = config[section];
    expect(Array.isArray(s.refs), `${section}.refs`).toBe(true);
    for (const ref of s.refs) expect(() => parseArtifactRef(ref), `${section}.refs: ${ref}`).not.toThrow();
    expect(Array.isArray(s.allowedTypes), `${section}.allowedTypes`).toBe(true);
    expect(s.rulesfilesDir, `${section}.rulesfilesDir`).toMatch(/^\//);
    expect(s.pluginsDir, `${section}.pluginsDir`).toMatch(/^\//);
  }
  expect(typeof config.install.resolveDeps).toBe('boolean');
  expect(config.follow.every).toMatch(/^(?:[0-9]+(?:ms|s|m|h))+$/);
  expect(typeof config.follow.jitter).toBe('number');
  expect(config.follow.stateDir).toMatch(/^\//);
  // The node's platform is detected at run time: one DaemonSet serves amd64 and arm64 nodes.
  expect(config.install.platform, 'install.platform must not be pinned').toBeUndefined();
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  restartPolicy?: string;
  securityContext?: any;
  startupProbe?: any;
  livenessProbe?: any;
  readinessProbe?: any;
}

export interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes?: any[];
  securityContext?: any;
  tolerations?: any[];
}

export interface Invariants {
  /** The config file path the containers read, and its parsed content. */
  configPath: string;
  config: any;
  install?: Container;
  follow?: Container;
  followIsNativeSidecar: boolean;
  podSpec: PodSpec;
}

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${flag}=`));
  return eq?.slice(flag.length + 1);
}

function envValue(c: Container, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

/** The volume mounted at `path` in container `c` (the longest mountPath that contains `path`). */
function volumeFor(c: Container, path: string): { name: string; mountPath: string } | undefined {
  const mounts = (c.volumeMounts ?? []).filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
  return mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

function portNumber(c: Container, port: string | number): number | undefined {
  if (typeof port === 'number') return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

/** The port of a HOST:PORT or [v6]:PORT address. */
function addrPort(addr: string): number {
  const m = /:(\d+)$/.exec(addr);
  if (!m) throw new Error(`metrics address "${addr}" has no port`);
  return Number(m[1]);
}

/**
 * Asserts the invariants a working pod needs, on the objects of one rendering. Returns what it found so
 * a test can check more.
 */
export function checkPodInvariants(podSpec: PodSpec, configMaps: K8sObject[]): Invariants {
  const diginfractl = [...(podSpec.initContainers ?? []), ...podSpec.containers].filter(
    (c) => c.args?.[0] === 'artifact' && (c.args[1] === 'install' || c.args[1] === 'follow'),
  );
  const install = (podSpec.initContainers ?? []).find((c) => c.args?.[0] === 'artifact' && c.args[1] === 'install');
  const followInit = (podSpec.initContainers ?? []).find((c) => c.args?.[0] === 'artifact' && c.args[1] === 'follow');
  const followMain = podSpec.containers.find((c) => c.args?.[0] === 'artifact' && c.args[1] === 'follow');
  const follow = followInit ?? followMain;
  expect(install ?? follow, 'the pod runs diginfractl').toBeDefined();
  expect(podSpec.containers.find((c) => c.args?.[0] === 'artifact' && c.args[1] === 'install'), 'install runs as an init container, never as a regular one').toBeUndefined();
  if (followInit) {
    expect(followInit.restartPolicy, 'follow in initContainers must be a native sidecar').toBe('Always');
    expect(followMain, 'follow runs once').toBeUndefined();
    if (install) {
      const names = podSpec.initContainers!.map((c) => c.name);
      expect(names.indexOf(install.name), 'install runs before the follow sidecar starts').toBeLessThan(names.indexOf(followInit.name));
    }
  }
  if (install) expect(install.restartPolicy, 'install runs to completion').toBeUndefined();

  // Both run the image's ENTRYPOINT (diginfractl) with the same --config, also given by DIGINFRACTL_CONFIG.
  const configPaths = new Set<string>();
  for (const c of diginfractl) {
    expect(c.command, `${c.name}: no command, the image's ENTRYPOINT is diginfractl`).toBeUndefined();
    const cfg = argValue(c.args!, '--config');
    expect(cfg, `${c.name} passes --config`).toBeDefined();
    configPaths.add(cfg!);
    expect(envValue(c, 'DIGINFRACTL_CONFIG'), `${c.name}: DIGINFRACTL_CONFIG`).toBe(cfg);
    expect(c.args!.includes('--platform'), `${c.name}: platform is detected at run time`).toBe(false);
  }
  expect(configPaths.size, 'install and follow read one config file').toBe(1);
  const configPath = [...configPaths][0]!;

  // That file is a key of the ConfigMap mounted (as a directory, so updates arrive) at its directory.
  const configMounts = new Set(diginfractl.map((c) => JSON.stringify(volumeFor(c, configPath))));
  expect(configMounts.size, 'both mount the config the same way').toBe(1);
  const configMount = volumeFor(diginfractl[0]!, configPath)!;
  expect(configMount.mountPath).toBe(posix.dirname(configPath));
  expect((configMount as any).subPath, 'config mounted as a directory so live updates arrive').toBeUndefined();
  const configVolume = podSpec.volumes?.find((v) => v.name === configMount.name);
  expect(configVolume?.configMap?.name, 'config volume is a ConfigMap').toBeDefined();
  const cm = configMaps.find((o) => o.metadata.name === configVolume.configMap.name);
  expect(cm, `ConfigMap ${configVolume.configMap.name} is rendered`).toBeDefined();
  const text = cm!.data?.[posix.basename(configPath)];
  expect(typeof text, `ConfigMap has key ${posix.basename(configPath)}`).toBe('string');
  const config = parseYaml(text);
  checkConfigShape(config);

  // Install and follow agree on the directories; both mount the same volumes at exactly those paths.
  expect(config.follow.rulesfilesDir).toBe(config.install.rulesfilesDir);
  expect(config.follow.pluginsDir).toBe(config.install.pluginsDir);
  const dirs = { rulesfiles: config.install.rulesfilesDir, plugins: config.install.pluginsDir, state: config.follow.stateDir };
  const volumeNames: Record<string, string> = {};
  for (const [what, dir] of Object.entries(dirs)) {
    const mounts = diginfractl.map((c) => (c.volumeMounts ?? []).find((m) => m.mountPath === dir));
    for (const [i, m] of mounts.entries()) {
      expect(m, `${diginfractl[i]!.name} mounts the ${what} dir ${dir}`).toBeDefined();
      expect(m!.readOnly ?? false, `${what} dir is writable`).toBe(false);
      expect(m!.subPath).toBeUndefined();
    }
    expect(new Set(mounts.map((m) => m!.name)).size, `one volume for the ${what} dir`).toBe(1);
    volumeNames[what] = mounts[0]!.name;
    const vol = podSpec.volumes?.find((v) => v.name === mounts[0]!.name);
    expect(vol, `volume ${mounts[0]!.name}`).toBeDefined();
    if (vol.hostPath) {
      expect(vol.hostPath.path, `${what} hostPath is mounted at the same path`).toBe(dir);
    } else {
      expect(vol.emptyDir, `${what} volume is a hostPath or an emptyDir`).toBeDefined();
    }
  }
  expect(new Set(Object.values(volumeNames)).size, 'rules, plugins and state are three volumes').toBe(3);
  // Cache and XDG dirs live on the state volume (the root filesystem may be read-only).
  const onState = (p: string | undefined) => p !== undefined && (p === dirs.state || p.startsWith(`${dirs.state}/`));
  if (config.cacheDir !== undefined) expect(onState(config.cacheDir), `cacheDir ${config.cacheDir} on the state volume`).toBe(true);
  for (const c of diginfractl) {
    expect(onState(envValue(c, 'XDG_CACHE_HOME')), `${c.name}: XDG_CACHE_HOME on the state volume`).toBe(true);
    if (c.securityContext?.readOnlyRootFilesystem) {
      const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === '/tmp');
      expect(tmp, `${c.name}: read-only root filesystem needs a writable /tmp`).toBeDefined();
    }
  }

  // Registry credentials and CA files point into mounted secrets.
  if (config.registry.authFile) {
    for (const c of diginfractl) {
      const m = volumeFor(c, config.registry.authFile);
      expect(m, `${c.name} mounts ${config.registry.authFile}`).toBeDefined();
      const vol = podSpec.volumes!.find((v) => v.name === m!.name);
      const rel = posix.relative(m!.mountPath, config.registry.authFile);
      expect(vol.secret?.items, 'auth secret volume').toContainEqual({ key: '.dockerconfigjson', path: rel });
    }
  }
  for (const file of Object.values<string>(config.registry.caFiles)) {
    for (const c of diginfractl) {
      const m = volumeFor(c, file);
      expect(m, `${c.name} mounts CA file ${file}`).toBeDefined();
      const vol = podSpec.volumes!.find((v) => v.name === m!.name);
      expect(vol.secret?.items?.map((i: any) => i.path)).toContain(posix.relative(m!.mountPath, file));
    }
  }

  // follow serves /healthz and /readyz on the port it listens on; probes point there.
  if (follow) {
    const flagAddr = argValue(follow.args!, '--metrics-addr');
    const addr = flagAddr ?? config.follow.metricsAddr;
    expect(addr, 'follow has a metrics address').toBeDefined();
    if (flagAddr && config.follow.metricsAddr) expect(config.follow.metricsAddr).toBe(flagAddr);
    const port = addrPort(addr);
    expect(follow.ports?.map((p) => p.containerPort), 'follow declares its port').toContain(port);
    const probes: [string, any, string][] = [
      ['livenessProbe', follow.livenessProbe, '/healthz'],
      ['readinessProbe', follow.readinessProbe, '/readyz'],
      ['startupProbe', follow.startupProbe, '/readyz'],
    ];
    for (const [name, probe, path] of probes) {
      if (!probe) continue;
      expect(probe.httpGet?.path, `${name} path`).toBe(path);
      expect(portNumber(follow, probe.httpGet.port), `${name} port`).toBe(port);
    }
    if (followInit) expect(followInit.startupProbe?.httpGet?.path, 'native sidecar has a startupProbe on /readyz').toBe('/readyz');
  }

  // Non-root wherever it is asked for: an effective runAsNonRoot never meets runAsUser 0.
  for (const c of diginfractl) {
    const eff = { ...(podSpec.securityContext ?? {}), ...(c.securityContext ?? {}) };
    if (eff.runAsNonRoot) expect(eff.runAsUser === undefined || eff.runAsUser > 0, `${c.name}: runAsNonRoot with UID ${eff.runAsUser}`).toBe(true);
    expect(c.securityContext?.allowPrivilegeEscalation, `${c.name}: no privilege escalation`).toBe(false);
    expect(c.securityContext?.privileged ?? false, `${c.name}: not privileged`).toBe(false);
    expect(c.securityContext?.capabilities?.drop, `${c.name}: drops all capabilities`).toContain('ALL');
  }
  return { configPath, config, ...(install && { install }), ...(follow && { follow }), followIsNativeSidecar: !!followInit, podSpec };
}

/** Checks the Service and ServiceMonitor (when present) select the DaemonSet's pods on the metrics port. */
export function checkServiceInvariants(objects: K8sObject[], ds: K8sObject, follow: Container | undefined): void {
  const podLabels = ds.spec.template.metadata.labels as Record<string, string>;
  for (const [k, v] of Object.entries<string>(ds.spec.selector.matchLabels)) expect(podLabels[k], `pod label ${k}`).toBe(v);
  const services = objects.filter((o) => o.kind === 'Service');
  for (const svc of services) {
    for (const [k, v] of Object.entries<string>(svc.spec.selector)) expect(podLabels[k], `Service selects pod label ${k}`).toBe(v);
    expect(follow, 'a Service needs the follow container').toBeDefined();
    for (const p of svc.spec.ports) {
      const target = typeof p.targetPort === 'string' ? portNumber(follow!, p.targetPort) : p.targetPort ?? p.port;
      expect(follow!.ports?.map((x) => x.containerPort), `Service port ${p.name} reaches follow`).toContain(target);
    }
  }
  for (const sm of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const svc = services.find((s) => Object.entries<string>(sm.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v));
    expect(svc, 'ServiceMonitor selects the Service').toBeDefined();
    for (const ep of sm.spec.endpoints) {
      expect(svc!.spec.ports.map((p: any) => p.name), 'ServiceMonitor endpoint port').toContain(ep.port);
      expect(ep.path ?? '/metrics').toBe('/metrics');
    }
  }
}

