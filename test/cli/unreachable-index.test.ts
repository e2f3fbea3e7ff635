/**
 * An index that cannot be reached (the default one offline, or any other), against the real registry
 * and a local HTTP index server stopped for the offline cases: every command skips it with one
 * warning saying how to silence it, a lookup another index answers still works, the failure is
 * remembered in the cache dir (no request until `index update`), a command that needs no index sends
 * none, and when the only index was skipped the error says so and why.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RegistryClient } from '../../src/registry/index.js';
import { cliEnv, logMessages as messages, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { freePort } from '../helpers/net.js';
import { pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { indexHandler, serve, type Served } from '../indexes/server.js';
import { clientFor } from '../install/setup.js';

let reg: TestRegistry;
let client: RegistryClient;
let corpFile: string;
/** The port of the "diginfra" index server: nothing listens there unless a test brings it up. */
let port: number;
let deadUrl: string;
let env: Awaited<ReturnType<typeof cliEnv>>;
let remoteIndex: string;

async function configure(e: NodeJS.ProcessEnv, indexes: { name: string; url: string }[]): Promise<void> {
  await writeFile(e.DIGINFRACTL_CONFIG!, stringify({ indexes, registry: { plainHttp: [reg.host] } }));
}

beforeAll(async () => {
  reg = await startRegistry();
  client = clientFor(reg);
  await pushRules(client, `${reg.host}/acme/k8saudit-rules:0.9.0`, '0.9.0', { name: 'k8saudit-rules' });
  const dir = await tempDir('unreachable-index-');
  const entry = { name: 'k8saudit-rules', type: 'rulesfile', registry: reg.host, repository: 'acme/k8saudit-rules', description: 'K8s audit rules', keywords: ['audit'] };
  corpFile = join(dir, 'corp.yaml');
  await writeFile(corpFile, stringify([entry]));
  remoteIndex = stringify([{ ...entry, name: 'remote-rules' }]);
  port = await freePort();
  deadUrl = `http://127.0.0.1:${port}/index.yaml`;
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

beforeEach(async () => {
  env = await cliEnv();
  await configure(env, [
    { name: 'diginfra', url: deadUrl },
    { name: 'corp', url: pathToFileURL(corpFile).href },
  ]);
});

describe('an unreachable index', () => {
  it('artifact info NAME and repo pull NAME answer from the other index, with one warning saying how to silence it', async () => {
    const info = await runCli(['artifact', 'info', 'k8saudit-rules', '-o', 'json'], { env });
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)[0]).toMatchObject({ index: 'corp', version: '0.9.0' });
    const warnings = messages(info.stderr).filter((m) => m.includes('skipped'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^index "diginfra" skipped: index "diginfra": cannot reach ${deadUrl.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
    expect(warnings[0]).toContain('"diginfractl index update diginfra" tries now; "diginfractl index remove diginfra" stops using it and this warning');

    const out = await tempDir('pull-');
    const pull = await runCli(['repo', 'pull', 'k8saudit-rules:0.9.0', '--dest', out], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(await readdir(out)).toContain('falco_rules.yaml');
  });

  it('INDEX::NAME of another index never touches the unreachable one', async () => {
    const info = await runCli(['artifact', 'info', 'corp::k8saudit-rules', '-o', 'json'], { env });
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)[0]).toMatchObject({ index: 'corp', version: '0.9.0' });
    expect(info.stderr).not.toContain('diginfra');
    const out = await tempDir('pull-');
    const pull = await runCli(['repo', 'pull', 'corp::k8saudit-rules:0.9.0', '--dest', out], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stderr).not.toContain('diginfra');
  });

  it('INDEX::NAME of the unreachable index says it was skipped and why', async () => {
    const r = await runCli(['artifact', 'info', 'diginfra::k8saudit-rules'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: cannot look up "diginfra::k8saudit-rules": index "diginfra" was skipped: index "diginfra": cannot reach .*ECONNREFUSED/);
    expect(r.stderr).toContain('hint: run "diginfractl index update diginfra" to try it again now');
  });

  it('install and search skip it the same way', async () => {
    const rules = await tempDir('rules-');
    const install = await runCli(['artifact', 'install', 'k8saudit-rules:0.9.0', '--rulesfiles-dir', rules, '--plugins-dir', rules], { env });
    expect(install.code, install.stderr).toBe(0);
    expect(messages(install.stderr).filter((m) => m.startsWith('index "diginfra" skipped'))).toHaveLength(1);
    // The same for search, in a home that has not met the failure yet; then remembered, no repeat.
    const fresh = await cliEnv();
    await configure(fresh, [
      { name: 'diginfra', url: deadUrl },
      { name: 'corp', url: pathToFileURL(corpFile).href },
    ]);
    for (const expected of [1, 0]) {
      const search = await runCli(['artifact', 'search', 'audit'], { env: fresh });
      expect(search.code, search.stderr).toBe(0);
      expect(search.stdout).toMatch(/^corp\s+k8saudit-rules/m);
      expect(messages(search.stderr).filter((m) => m.startsWith('index "diginfra" skipped'))).toHaveLength(expected);
    }
  });

  it('is remembered: no request until it is due again or "index update" asks now', async () => {
    const first = await runCli(['artifact', 'search', 'rules'], { env });
    expect(first.code, first.stderr).toBe(0);
    const cache = join(env.XDG_CACHE_HOME!, 'diginfractl', 'indexes');
    const record = JSON.parse(await readFile(join(cache, 'diginfra.unreachable.json'), 'utf8'));
    expect(record).toMatchObject({ url: deadUrl, code: 'NETWORK', message: expect.stringContaining('ECONNREFUSED') });
    expect(Date.parse(record.retryAt) - Date.parse(record.failedAt)).toBe(30 * 60_000);

    // The index comes back at the same address: commands still do not ask it, until `index update`.
    let server: Served | undefined = await serve(indexHandler({ '/index.yaml': remoteIndex }), undefined, port);
    try {
      // Skipped without a request, and without repeating the warning the first command gave.
      for (const args of [['artifact', 'search', 'rules'], ['artifact', 'info', 'k8saudit-rules']]) {
        const r = await runCli(args, { env });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr, args.join(' ')).not.toContain('skipped');
      }
      // A lookup nothing answers says what was skipped, why and since when.
      const missing = await runCli(['artifact', 'info', 'remote-rules'], { env });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/error: no artifact named "remote-rules" in any index \(searched corp; index "diginfra" was skipped: index "diginfra": cannot reach .*ECONNREFUSED.* \(at \S+Z\)\)/);
      expect(missing.stderr).toContain('"diginfractl index update diginfra" to try the skipped index again');
      const none = await runCli(['artifact', 'search', 'remote'], { env });
      expect(none.code).toBe(0);
      expect(messages(none.stderr)).toEqual([expect.stringMatching(/^no artifact matches "remote"; index "diginfra" was skipped: index "diginfra": cannot reach .*ECONNREFUSED.* \(at \S+Z\)$/)]);
      expect(server.requests).toHaveLength(0);

      const update = await runCli(['index', 'update', 'diginfra'], { env });
      expect(update.code, update.stderr).toBe(0);
      expect(server.requests).toHaveLength(1);
      expect(await readdir(cache)).not.toContain('diginfra.unreachable.json');
      const found = await runCli(['artifact', 'search', 'rules'], { env });
      expect(found.stderr).not.toContain('skipped');
      expect(found.stdout).toMatch(/^diginfra\s+remote-rules/m);
    } finally {
      await server.close();
      server = undefined;
    }
  });

  it('a command that needs no index sends it no request', async () => {
    const server = await serve(indexHandler({ '/index.yaml': remoteIndex }), undefined, port);
    try {
      const ref = `${reg.host}/acme/k8saudit-rules:0.9.0`;
      const rules = await tempDir('rules-');
      const out = await tempDir('pull-');
      for (const args of [
        ['artifact', 'info', ref],
        ['repo', 'pull', ref, '--dest', out],
        ['artifact', 'install', ref, '--rulesfiles-dir', rules, '--plugins-dir', rules],
        ['index', 'list'],
        ['config', 'show'],
      ]) {
        const r = await runCli(args, { env });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      }
      expect(server.requests).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('when the only configured index was skipped, the error says so and why, not that none is configured', async () => {
    await configure(env, [{ name: 'diginfra', url: deadUrl }]);
    const info = await runCli(['artifact', 'info', 'k8saudit-rules'], { env });
    expect(info.code).toBe(1);
    expect(info.stderr).toMatch(/error: no artifact named "k8saudit-rules" in any index: the only one configured, "diginfra", was skipped: index "diginfra": cannot reach .*ECONNREFUSED/);
    expect(info.stderr).not.toContain('none is configured');
    const rules = await tempDir('rules-');
    const install = await runCli(['artifact', 'install', 'k8saudit-rules', '--rulesfiles-dir', rules, '--plugins-dir', rules], { env });
    expect(install.code).toBe(1);
    expect(install.stderr).toContain('error: no artifact named "k8saudit-rules" in any index: the only one configured, "diginfra", was skipped');
    const search = await runCli(['artifact', 'search', 'audit'], { env });
    expect(search.code).toBe(1);
    expect(search.stderr).toMatch(/error: nothing to search: index "diginfra", the only one configured, was skipped: index "diginfra": cannot reach .*ECONNREFUSED.* \(at \S+Z\)/);
    expect(search.stderr).toContain('hint: run "diginfractl index update diginfra" to try again now');
  });
});
