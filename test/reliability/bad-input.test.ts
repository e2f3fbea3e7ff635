/**
 * Hostile or mistyped input is refused where it enters, with the usual one-line error, never with a
 * Node error from deep inside: the built CLI against a real registry.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RegistryClient } from '../../src/registry/client.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor } from '../install/setup.js';
import { pushRules } from '../helpers/push.js';

let reg: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  reg = await startRegistry();
  client = clientFor(reg);
  await pushRules(client, `${reg.host}/acme/rules:1.0.0`, '1.0.0', { name: 'rules', content: '- list: x\n  items: []\n', fileName: 'x.yaml' });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

/** No Node internals in what the user reads. */
function expectNoNodeError(stderr: string): void {
  expect(stderr).not.toMatch(/Invalid URL|ERR_INVALID|TypeError|null bytes|\n\s+at /);
}

describe('a registry port out of range', () => {
  it.each([
    [['repo', 'pull', '127.0.0.1:99999/acme/rules:1.0.0', '--plain-http']],
    [['artifact', 'info', '127.0.0.1:99999/acme/rules:1.0.0', '--plain-http']],
    [['artifact', 'install', 'localhost:65536/acme/rules:1.0.0', '--plain-http']],
    [['repo', 'push', '127.0.0.1:0/acme/rules:1.0.0', 'RULES_FILE', '--type', 'rulesfile', '--version', '1.0.0', '--plain-http']],
  ])('%j is a usage error (exit 2) that names the port', async (args) => {
    const env = await cliEnv();
    const rulesFile = join(env.HOME, 'x.yaml');
    await writeFile(rulesFile, '- list: x\n  items: []\n');
    const r = await runCli(args.map((a) => (a === 'RULES_FILE' ? rulesFile : a)), { env });
    const port = /:(\d+)\//.exec(args.find((a) => a.includes('/'))!)![1]!;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: invalid reference ".*": port ${port} of registry ".*:${port}" is out of range \\(1-65535\\)`, 'm'));
    expectNoNodeError(r.stderr);
  });

  it('the highest port, 65535, is a reference like any other (the registry is simply not there)', async () => {
    const env = await cliEnv();
    const r = await runCli(['artifact', 'info', '127.0.0.1:65535/acme/rules:1.0.0', '--plain-http'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach 127.0.0.1:65535');
  });

  it('in install.refs of the config: config validate names the key and the port', async () => {
    const env = await cliEnv();
    await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ install: { refs: [`${reg.host}/acme/rules:1.0.0`, '127.0.0.1:99999/acme/rules:1'] } }));
    const r = await runCli(['config', 'validate', env.DIGINFRACTL_CONFIG!], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('install.refs[1]: invalid reference "127.0.0.1:99999/acme/rules:1": port 99999 of registry "127.0.0.1:99999" is out of range (1-65535)');
  });

  it('as the registry of an index entry: index add refuses the index and names the entry and the port', async () => {
    const env = await cliEnv();
    const index = join(env.HOME, 'index.yaml');
    await writeFile(index, stringify([{ name: 'x', type: 'rulesfile', registry: '127.0.0.1:99999', repository: 'acme/x', description: 'x', keywords: [] }]));
    const r = await runCli(['index', 'add', 'corp', index], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('index "corp": entry 1 ("x"): "registry" "127.0.0.1:99999": port 99999 is out of range (1-65535)');
  });
});

describe('a NUL byte in a path of the config', () => {
  it.each([
    ['install.rulesfilesDir', { install: { rulesfilesDir: '/tmp/rules\0/x' } }, 'install.rulesfilesDir'],
    ['install.dirs', { install: { dirs: { asset: '/tmp/a\0b' } } }, 'install.dirs.asset'],
    ['cacheDir', { cacheDir: '/tmp/c\0' }, 'cacheDir'],
    ['registry.caFiles', { registry: { caFiles: { '*': '/etc/ca\0.pem' } } }, 'registry.caFiles.*'],
    ['an index URL', { indexes: [{ name: 'x', url: '/tmp/i\0.yaml' }] }, 'indexes[0].url'],
  ])('in %s: refused when the config is read, with one line naming the key', async (_label, config, key) => {
    const env = await cliEnv();
    await writeFile(env.DIGINFRACTL_CONFIG!, stringify(config));
    const v = await runCli(['config', 'validate', env.DIGINFRACTL_CONFIG!], { env });
    expect(v.code).toBe(1);
    expect(v.stderr).toContain(`error: config ${env.DIGINFRACTL_CONFIG}: ${key} must not contain a NUL byte (\\0)\nhint: `);
    expectNoNodeError(v.stderr);

    // A command that would use the path fails the same way, before anything is fetched or written.
    const dirs = ['--plugins-dir', join(env.HOME, 'plugins'), ...(key === 'install.rulesfilesDir' ? [] : ['--rulesfiles-dir', join(env.HOME, 'rules')])];
    const r = await runCli(['artifact', 'install', `${reg.host}/acme/rules:1.0.0`, '--plain-http', ...dirs], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${key} must not contain a NUL byte (\\0)`);
    expectNoNodeError(r.stderr);
    expect(await readdir(env.HOME)).not.toContain('rules');
    expect(await readdir(env.HOME)).not.toContain('plugins');
  });
});
