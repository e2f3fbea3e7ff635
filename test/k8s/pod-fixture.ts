/**
 * What the pod-level tests share: a real registry holding the artifacts the rendered pod installs and
 * follows, and the chart rendered for it (`helm template`), checked against the pod invariants.
 *
 * The registry holds a rules file (`acme/diginfra-rules`, version 1.0.0 with floating tags `1` and
 * `1.0`), a plugin built for two platforms (`acme/json:0.7.0`, an image index: each node must get its
 * own build) and an asset (`acme/geo:1.0.0`). The files pushed live under ROOT/src; ROOT is the test's
 * temp dir, where the rendered values are written too (ROOT/values.yaml).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import type { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type StartOptions, type TestRegistry } from '../helpers/registry.js';
import { checkPodInvariants, helmTemplate, parseManifests, type Container, type Invariants, type K8sObject, type PodSpec } from './support.js';
import { containerEnv as kubeletEnv } from './kubelet-env.js';

/** This machine's platform, as the CLI detects it. */
export const PLATFORM = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;
export const RULES_V1 = '- list: diginfra_e2e_v1\n  items: []\n';
export const RULES_V2 = '- list: diginfra_e2e_v2\n  items: [a, b]\n';
export const RULES_FILE = 'diginfra_e2e_rules.yaml';
export const GEO_DATA = Buffer.from([0x00, 0xff, 0x47, 0x45, 0x4f, 0x0a]);
/** The value of `valueFrom.fieldRef: spec.nodeName` in the tests. */
export const NODE_NAME = 'e2e-node';

export interface ArtifactFixture {
  reg: TestRegistry;
  client: RegistryClient;
  /** The test's temp dir. */
  root: string;
  /** The references of what is pushed, for the chart's values. */
  refs: { rules: string; plugin: string; asset: string };
  /** Pushes the rules file at `version`, moving the floating tags (`1`, `1.x`). */
  pushRules(version: string, content: string): Promise<void>;
  /** Stops the registry and removes the temp dir. */
  close(): Promise<void>;
}

/** Starts a registry (anonymous unless `registry.auth` says otherwise) and pushes the artifacts. */
export async function startArtifacts(opts: { prefix: string; registry?: StartOptions }): Promise<ArtifactFixture> {
  // Loaded here, not at the top: they pull in the CLI's source, and a test file must be able to fail
  // with its own message (the CLI is not built, podman is missing) before.
  const setup = await import('../install/setup.js');
  const { pushArtifact } = await import('../../src/artifact/push.js');
  const { RegistryClient } = await import('../../src/registry/client.js');
  const { parseOciReference } = await import('../../src/reference/reference.js');

  const root = await mkdtemp(join(tmpdir(), opts.prefix));
  const reg = await startRegistry(opts.registry);
  const client = new RegistryClient({
    hostSettings: () => ({ plainHttp: true }),
    retry: { attempts: 1, baseDelayMs: 5 },
    ...(reg.username !== undefined && {
      credentials: { get: async (host: string) => (host === reg.host ? { username: reg.username!, password: reg.password! } : undefined) },
    }),
  });
  const source = async (name: string, content: string | Buffer): Promise<string> => {
    const path = join(root, 'src', name);
    await mkdir(posix.dirname(path), { recursive: true });
    await writeFile(path, content);
    return path;
  };
  const refs = { rules: `${reg.host}/acme/diginfra-rules:1`, plugin: `${reg.host}/acme/json:0.7.0`, asset: `${reg.host}/acme/geo:1.0.0` };
  const pushRules = async (version: string, content: string): Promise<void> => {
    const file = await source(`${version}/${RULES_FILE}`, content);
    await pushArtifact(client, parseOciReference(`${reg.host}/acme/diginfra-rules:${version}`), {
      type: 'rulesfile', version, name: 'diginfra-rules', files: [file], addFloatingTags: true,
    });
  };

  await pushRules('1.0.0', RULES_V1);
  const amd = await source('amd64/libjson.so', setup.fakePlugin('json', '0.7.0', 'linux/amd64'));
  const arm = await source('arm64/libjson.so', setup.fakePlugin('json', '0.7.0', 'linux/arm64'));
  await pushArtifact(client, parseOciReference(refs.plugin), {
    type: 'plugin', version: '0.7.0', name: 'json', files: [amd, arm], platforms: [setup.AMD64, setup.ARM64], addFloatingTags: true,
  });
  // An artifact of another type, placed in the directory the chart's hostPaths.dirs gives it.
  const geo = await source('geo/geo.mmdb', GEO_DATA);
  await pushArtifact(client, parseOciReference(refs.asset), { type: 'asset', version: '1.0.0', name: 'geo', files: [geo] });

  return {
    reg,
    client,
    root,
    refs,
    pushRules,
    async close() {
      await client.close();
      await reg.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A free loopback port, for the metrics server and stand-ins of the pod. */

export interface RenderedPod {
  objects: K8sObject[];
  configMap: K8sObject;
  pod: PodSpec;
  invariants: Invariants;
  /** The diginfractl containers by role; follow is an init container in native-sidecar mode. */
  install: Container;
  follow: Container;
}

/** Renders the chart with `valuesFiles` then `values` (written to ROOT/values.yaml) and checks the pod. */
export async function renderPod(root: string, values: object, valuesFiles: string[] = []): Promise<RenderedPod> {
  const valuesFile = join(root, 'values.yaml');
  await writeFile(valuesFile, stringify(values));
  const r = await helmTemplate({ valuesFiles: [...valuesFiles, valuesFile] });
  expect(r.code, r.stderr).toBe(0);
  const objects = parseManifests(r.stdout);
  const configMap = objects.find((o) => o.kind === 'ConfigMap')!;
  const pod = objects.find((o) => o.kind === 'DaemonSet')!.spec.template.spec as PodSpec;
  const invariants = checkPodInvariants(pod, [configMap]);
  const all = [...(pod.initContainers ?? []), ...pod.containers];
  return { objects, configMap, pod, invariants, install: all.find((c) => c.name === 'install')!, follow: all.find((c) => c.name === 'follow')! };
}

/** A container's env as the kubelet resolves it: values, and `spec.nodeName` for the node's name. */
export function containerEnv(c: Container): Record<string, string> {
  return kubeletEnv(c, { nodeName: NODE_NAME });
}
