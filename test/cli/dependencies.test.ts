/**
 * Dependency versions as the ecosystem reads them, through `artifact install` (the built CLI) against
 * the real registry: real plugins are 0.x, and rules that need `k8saudit:0.7.0` mean "k8saudit, same
 * major, at least 0.7.0". Dependencies are found beside the rules (same registry, sibling repository).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RegistryClient } from '../../src/registry/client.js';
import { cliEnv, requireCli, runCli } from '../helpers/cli.js';
import { pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor, pushPlugin } from '../install/setup.js';
import { jsonErrorIn } from './json-error.js';

let reg: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  requireCli('artifact', ['install']);
  reg = await startRegistry();
  client = clientFor(reg);
  for (const v of ['0.6.0', '0.7.0', '0.9.1', '1.1.0']) await pushPlugin(client, reg.host, 'acme/k8saudit', 'k8saudit', v);
  await pushPlugin(client, reg.host, 'acme/k8saudit-eks', 'k8saudit-eks', '0.2.3');
  const rules = (name: string, deps: { name: string; version: string; alternatives?: { name: string; version: string }[] }[]) =>
    pushRules(client, `${reg.host}/acme/${name}:1.0.0`, '1.0.0', { name, content: `- list: ${name.replace(/-/g, '_')}\n  items: []\n`, fileName: `${name}.yaml`, dependencies: deps });
  await rules('needs-07', [{ name: 'k8saudit', version: '0.7.0' }]);
  await rules('needs-08', [{ name: 'k8saudit', version: '0.8.0' }]);
  await rules('needs-095', [{ name: 'k8saudit', version: '0.9.5' }]);
  await rules('needs-1', [{ name: 'k8saudit', version: '1.0.0' }]);
  await rules('needs-07-or-eks', [{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }]);
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

/** A node of its own, no index (nothing is looked up on the network but the registry). */
async function node(): Promise<NodeJS.ProcessEnv> {
  const env = await cliEnv();
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({ indexes: [], registry: { plainHttp: [reg.host] }, install: { rulesfilesDir: join(env.HOME, 'rules'), pluginsDir: join(env.HOME, 'plugins') } }),
  );
  return env;
}

interface Installed {
  installed: { name: string; version: string; requiredBy: string[] }[];
}

async function install(...refs: string[]): Promise<{ code: number; stderr: string; out?: Installed }> {
  const r = await runCli(['artifact', 'install', ...refs.map((n) => (n.includes('/') ? n : `${reg.host}/acme/${n}`)), '-o', 'json'], { env: await node() });
  return { code: r.code, stderr: r.stderr, ...(r.code === 0 && { out: JSON.parse(r.stdout) as Installed }) };
}

const versions = (out: Installed | undefined) => out?.installed.map((a) => `${a.name} ${a.version}`);

describe('dependency versions at install (real registry)', () => {
  it('rules needing k8saudit 0.7.0 get the newest 0.x (0.9.1), not 0.7.x and not 1.x', async () => {
    const r = await install('needs-07:1.0.0');
    expect(r.code, r.stderr).toBe(0);
    expect(versions(r.out)).toEqual(['needs-07 1.0.0', 'k8saudit 0.9.1']);
  });

  it('an installed 0.9.1 named on the command line satisfies rules that need 0.7.0', async () => {
    const r = await install('needs-07:1.0.0', 'k8saudit:0.9.1');
    expect(r.code, r.stderr).toBe(0);
    expect(versions(r.out)).toEqual(['needs-07 1.0.0', 'k8saudit 0.9.1']);
  });

  it('0.7.0 and 0.8.0 asked for are not "different major versions": one 0.x serves both', async () => {
    const r = await install('needs-07:1.0.0', 'needs-08:1.0.0');
    expect(r.code, r.stderr).toBe(0);
    expect(versions(r.out)).toEqual(['needs-07 1.0.0', 'needs-08 1.0.0', 'k8saudit 0.9.1']);
    expect(r.out!.installed[2]!.requiredBy).toEqual(['needs-07 1.0.0', 'needs-08 1.0.0']);
  });

  it('conflicts are said exactly: two majors, or nothing published new enough', async () => {
    const majors = await install('needs-07:1.0.0', 'needs-1:1.0.0');
    expect(majors.code).toBe(1);
    expect(jsonErrorIn(majors.stderr)).toMatchObject({
      code: 'DEPENDENCY_CONFLICT',
      message:
        'no version of k8saudit satisfies every artifact that needs it: needs-07 1.0.0 needs k8saudit >=0.7.0 <1.0.0; needs-1 1.0.0 needs k8saudit >=1.0.0 <2.0.0 (they ask for different major versions: 0.x and 1.x)',
    });
    const tooOld = await install('needs-07:1.0.0', 'needs-095:1.0.0');
    expect(tooOld.code).toBe(1);
    expect(jsonErrorIn(tooOld.stderr).message).toContain('(the newest 0.x version published is 0.9.1, older than 0.9.5; available: 0.6.0, 0.7.0, 0.9.1, 1.1.0)');
    const pinned = await install('needs-07:1.0.0', 'k8saudit:0.6.0');
    expect(pinned.code).toBe(1);
    expect(jsonErrorIn(pinned.stderr).message).toContain('the command line asks for k8saudit 0.6.0; needs-07 1.0.0 needs k8saudit >=0.7.0 <1.0.0');
  });

  it('when the first alternative conflicts, the next one is installed instead of failing', async () => {
    const r = await install('needs-07-or-eks:1.0.0', 'needs-1:1.0.0');
    expect(r.code, r.stderr).toBe(0);
    const deps = r.out!.installed.filter((a) => a.requiredBy.length > 0).map((a) => `${a.name} ${a.version} <- ${a.requiredBy.join(', ')}`);
    expect(deps.sort()).toEqual(['k8saudit 1.1.0 <- needs-1 1.0.0', 'k8saudit-eks 0.2.3 <- needs-07-or-eks 1.0.0']);
    const pinned = await install('needs-07-or-eks:1.0.0', 'k8saudit:0.6.0');
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(versions(pinned.out)).toEqual(['needs-07-or-eks 1.0.0', 'k8saudit 0.6.0', 'k8saudit-eks 0.2.3']);
  });
});
