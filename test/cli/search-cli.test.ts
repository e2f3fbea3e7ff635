/**
 * `diginfractl artifact search` end to end, on the real public index fixture and a second index that
 * shares names; plus a check that the search path loads neither the registry client, the YAML
 * library nor the HTTP client.
 */
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, NODE, ROOT, cliEnv, runCli } from '../helpers/cli.js';
import { GOOD_INDEX, indexHandler, serve } from '../indexes/server.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'falcosecurity-index.yaml');
let env: Awaited<ReturnType<typeof cliEnv>>;

beforeAll(async () => {
  env = await cliEnv();
  const dir = dirname(env.DIGINFRACTL_CONFIG!);
  await copyFile(FIXTURE, join(dir, 'falco.yaml'));
  await writeFile(join(dir, 'corp.yaml'), GOOD_INDEX.replace(/ghcr\.io/g, 'registry.corp:5000'));
  await writeFile(env.DIGINFRACTL_CONFIG!, 'indexes: []\n');
  expect((await runCli(['index', 'add', 'corp', join(dir, 'corp.yaml')], { env })).code).toBe(0);
  expect((await runCli(['index', 'add', 'falco', pathToFileURL(join(dir, 'falco.yaml')).href], { env })).code).toBe(0);
});

describe('artifact search', () => {
  it('prints a table ranked exact name > prefix > keyword > description; a name in two indexes shows twice', async () => {
    const r = await runCli(['artifact', 'search', 'k8saudit'], { env });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^INDEX\s+ARTIFACT\s+TYPE\s+REGISTRY\s+REPOSITORY\s+DESCRIPTION$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/).slice(0, 4).join(' '))).toEqual([
      'corp k8saudit plugin registry.corp:5000',
      'falco k8saudit plugin ghcr.io',
      'falco k8saudit-aks plugin ghcr.io',
    ]);
    expect(lines[2]).toMatch(/^falco\s+k8saudit\s+plugin\s+ghcr\.io\s+falcosecurity\/plugins\/plugin\/k8saudit\s+Read Kubernetes Audit Events and monitor Kubernetes Clusters$/);
    expect(lines).toHaveLength(1 + 2 + 7);
  });

  it('needs every keyword to match, case-insensitively, and filters by type and index', async () => {
    const r = await runCli(['artifact', 'search', 'AWS', 'cloudtrail', '--type', 'rulesfile'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[1])).toEqual(['cloudtrail-rules']);
    const only = await runCli(['artifact', 'search', 'audit', '--index', 'corp'], { env });
    expect(only.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(['corp k8saudit', 'corp k8saudit-rules']);
  });

  it('with no keyword lists everything', async () => {
    const r = await runCli(['artifact', 'search'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1 + 2 + 28);
  });

  it('-o json passes every field of the entry on, with its index', async () => {
    const r = await runCli(['artifact', 'search', 'cloudtrail', '--type', 'plugin', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    const hits = JSON.parse(r.stdout);
    expect(hits).toHaveLength(1);
    expect(hits[0]).toMatchObject({
      index: 'falco',
      name: 'cloudtrail',
      type: 'plugin',
      registry: 'ghcr.io',
      repository: 'falcosecurity/plugins/plugin/cloudtrail',
      license: 'Apache-2.0',
      signature: { cosign: { 'certificate-identity-regexp': 'https://github.com/falcosecurity/plugins/' } },
    });
  });

  it('no match: exit 0, nothing on stdout', async () => {
    const r = await runCli(['artifact', 'search', 'no-such-thing-anywhere'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no artifact matches');
    expect(JSON.parse((await runCli(['artifact', 'search', 'no-such-thing', '-o', 'json'], { env })).stdout)).toEqual([]);
  });

  it('names an unknown --index and a missing index list', async () => {
    const r = await runCli(['artifact', 'search', 'x', '--index', 'nope'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: index "nope" is not configured (configured: corp, falco)');
    const empty = await cliEnv();
    await writeFile(empty.DIGINFRACTL_CONFIG!, 'indexes: []\n');
    const none = await runCli(['artifact', 'search'], { env: empty });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('error: no index is configured, so there is nothing to search\nhint: add one with "diginfractl index add NAME URL"');
  });

  it('fetches an index that was configured by hand but never fetched, then uses the cached copy', async () => {
    const s = await serve(indexHandler({ '/i.yaml': GOOD_INDEX }));
    try {
      const e = await cliEnv();
      await writeFile(e.DIGINFRACTL_CONFIG!, `indexes:\n  - name: hand\n    url: ${s.base}/i.yaml\n`);
      const first = await runCli(['artifact', 'search', 'rules'], { env: e });
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain('fetching index \\"hand\\"');
      expect(first.stdout).toContain('k8saudit-rules');
      const second = await runCli(['artifact', 'search', 'rules'], { env: e });
      expect(second.stdout).toBe(first.stdout);
      expect(s.requests).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('an index that cannot be loaded is skipped with a warning; the others are searched', async () => {
    const e = await cliEnv();
    const dir = dirname(e.DIGINFRACTL_CONFIG!);
    await writeFile(join(dir, 'ok.yaml'), GOOD_INDEX);
    await writeFile(e.DIGINFRACTL_CONFIG!, `indexes:\n  - name: gone\n    url: ${join(dir, 'missing.yaml')}\n  - name: ok\n    url: ${join(dir, 'ok.yaml')}\n`);
    const r = await runCli(['artifact', 'search', 'k8saudit'], { env: e });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`index \\"gone\\" skipped: index \\"gone\\": ${join(dir, 'missing.yaml')} does not exist`);
    expect(r.stdout).toContain('ok     k8saudit');
  });

  it('loads neither the registry client, the YAML library nor the HTTP client', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diginfractl-hooks-'));
    const hook = join(dir, 'hook.cjs');
    const log = join(dir, 'loaded.json');
    // Records every file the bundled bin loads (require hook) and every Node builtin (moduleLoadList).
    await writeFile(
      hook,
      `const { registerHooks } = require('node:module');
const { writeFileSync } = require('node:fs');
const files = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); files.push(r.url); return r; } });
process.on('exit', () => writeFileSync(${JSON.stringify(log)}, JSON.stringify({ files, builtins: process.moduleLoadList })));
`,
    );
    const r = await new Promise<{ code: number; stderr: string }>((ok) =>
      execFile(NODE, ['--require', hook, CLI, 'artifact', 'search', 'audit'], { env }, (err, _out, stderr) => ok({ code: err ? 1 : 0, stderr })),
    );
    expect(r.code, r.stderr).toBe(0);
    const { files, builtins } = JSON.parse(await readFile(log, 'utf8')) as { files: string[]; builtins: string[] };
    const chunks = files.filter((u) => u.includes('/dist/bin/'));
    expect(chunks.some((u) => /\/artifact-search-[\w-]+\.cjs$/.test(u))).toBe(true);
    // Marks of undici (its error codes), the yaml library and the registry client in the bundle's chunks.
    for (const url of chunks) {
      const code = await readFile(new URL(url), 'utf8');
      expect(code, url).not.toMatch(/UND_ERR|YAMLParseError|docker-content-digest/i);
    }
    // Nor Node modules it does not use: crypto, HTTP, TLS, zlib, child_process (commander's is lazy,
    // scripts/bundle.mjs), fs/promises (its reads are synchronous).
    expect(builtins.filter((m) => /^NativeModule (crypto|http|https|tls|zlib|child_process|fs\/promises|internal\/deps\/undici\/undici)$/.test(m))).toEqual([]);
  });
});
