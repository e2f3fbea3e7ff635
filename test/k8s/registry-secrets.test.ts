/**
 * Registry credentials from Secrets (registry.auth.basic), for real: the chart is rendered for a
 * docker-registry with htpasswd auth, and the rendered init container runs the built CLI with the env
 * the kubelet would give it (the Secret's keys in variables, `$(NAME)` references expanded).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireCli, runCli } from '../helpers/cli.js';
import { ensureK8sTools } from '../helpers/helm.js';
import { pushRules } from '../helpers/push.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { containerEnv, type Secrets } from './kubelet-env.js';
import { helmTemplate, parseManifests, type Container, type PodSpec } from './support.js';

const CONFIG_DIR = '/etc/diginfractl';
/** Not "," or ";" (the variable's separators, which the schema documents); "$(x)" must stay as it is. */
const PASSWORD = 'S3cret$(x)-pa$$';
const RULES = '- list: from_a_private_registry\n  items: [x]\n';

let reg: TestRegistry;
let root: string;
let install: Container;
let configText: string;

beforeAll(async () => {
  requireCli('artifact', ['install']);
  await ensureK8sTools();
  reg = await startRegistry({ auth: 'htpasswd', username: 'robot', password: PASSWORD });
  root = await mkdtemp(join(tmpdir(), 'diginfractl-registry-secrets-'));
  const client = new RegistryClient({ hostSettings: () => ({ plainHttp: true }), credentials: { get: async () => ({ username: 'robot', password: PASSWORD }) } });
  try {
    await pushRules(client, `${reg.host}/acme/private-rules:1.0.0`, '1.0.0', { content: RULES, fileName: 'private_rules.yaml' });
  } finally {
    await client.close();
  }
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('registry.auth.basic from a Secret', () => {
  it('lets the init container install from a registry that requires a password, and only with the right one', async () => {
    const host = { rules: join(root, 'rules'), plugins: join(root, 'plugins'), state: join(root, 'state') };
    const values = {
      indexes: [],
      artifacts: { install: { refs: [`${reg.host}/acme/private-rules:1.0.0`] }, follow: { refs: [`${reg.host}/acme/private-rules:1.0.0`] } },
      registry: { plainHttp: [reg.host], auth: { basic: [{ registry: reg.host, secretName: 'private-registry' }] } },
      hostPaths: { rulesfilesDir: host.rules, pluginsDir: host.plugins, stateDir: host.state },
    };
    await writeFile(join(root, 'values.yaml'), stringify(values));
    const r = await helmTemplate({ valuesFiles: [join(root, 'values.yaml')] });
    expect(r.code, r.stderr).toBe(0);
    const objects = parseManifests(r.stdout);
    const pod = objects.find((o) => o.kind === 'DaemonSet')!.spec.template.spec as PodSpec;
    install = pod.initContainers!.find((c) => c.name === 'install')!;
    configText = objects.find((o) => o.kind === 'ConfigMap')!.data['diginfractl.yaml'];

    const wrong = await runInstall({ 'private-registry': { username: 'robot', password: 'not-the-password' } });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/401|denied|unauthori[sz]ed|credentials/i);
    await expect(readFile(join(host.rules, 'private_rules.yaml'), 'utf8')).rejects.toThrow();

    const right = await runInstall({ 'private-registry': { username: 'robot', password: PASSWORD } });
    expect(right.code, right.stderr).toBe(0);
    expect(await readFile(join(host.rules, 'private_rules.yaml'), 'utf8')).toBe(RULES);
  }, 60_000);
});

/** The install container as the kubelet starts it: env from the Secrets, the ConfigMap at its mount. */
async function runInstall(secrets: Secrets) {
  const configDir = await mkdtemp(join(root, 'config-'));
  await writeFile(join(configDir, 'diginfractl.yaml'), configText);
  const home = await mkdtemp(join(root, 'home-'));
  await mkdir(join(root, 'state'), { recursive: true });
  const env = containerEnv(install, { secrets });
  for (const [k, v] of Object.entries(env)) if (v.startsWith(CONFIG_DIR)) env[k] = v.replace(CONFIG_DIR, configDir);
  const args = install.args!.map((a) => (a.startsWith(CONFIG_DIR) ? a.replace(CONFIG_DIR, configDir) : a));
  return runCli(args, { env: { PATH: process.env.PATH, HOME: home, TMPDIR: home, ...env } });
}
