/**
 * `registry.mirrors` with fallback, against real registries: a mirror that is down (nothing listens),
 * one that answers 503, one that lacks the repository (a real registry: 404), one that has it, and the
 * registry itself (the origin). Reads fall back mirror by mirror and then to the origin, each blob's
 * source is logged, a digest-pinned pull is served by a mirror alone, and the registry-requests
 * metric counts each source.
 */
import { createServer, type Server } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { resolveArtifact } from '../../src/artifact/pull.js';
import { defaultConfig } from '../../src/config/types.js';
import { createFollowMetrics } from '../../src/metrics/follow-metrics.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { createRegistryClient, type RegistryClient } from '../../src/registry/index.js';
import { cliEnv, logMessages as messages, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { freePort, listenOnLoopback } from '../helpers/net.js';
import { pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { metricValue } from '../follow/setup.js';
import { AMD64, clientFor } from '../install/setup.js';

let origin: TestRegistry;
/** A real registry without the repository: it answers 404. */
let empty: TestRegistry;
/** A real registry holding a copy of the repository. */
let full: TestRegistry;
/** Answers 503 to everything. */
let failing: Server;
let failingHost: string;
/** Nothing listens there. */
let deadHost: string;
let client: RegistryClient;
let digest: string;
let ref: string;
const RULES = '- list: mirrored\n  items: []\n';

beforeAll(async () => {
  [origin, empty, full] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
  client = clientFor(origin);
  ref = `${origin.host}/acme/mirrored-rules:1.0.0`;
  digest = await pushRules(client, ref, '1.0.0', { name: 'mirrored-rules', content: RULES, fileName: 'mirrored_rules.yaml' });
  failing = createServer((_req, res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance'));
  failingHost = `127.0.0.1:${await listenOnLoopback(failing)}`;
  deadHost = `127.0.0.1:${await freePort()}`;
  const env = await cliEnv({ DIGINFRACTL_REGISTRY_PLAIN_HTTP: `${origin.host},${full.host}` });
  const copy = await runCli(['repo', 'copy', ref, `${full.host}/acme/mirrored-rules`], { env });
  expect(copy.code, copy.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  failing?.close();
  await client?.close();
  await Promise.all([origin?.stop(), empty?.stop(), full?.stop()]);
});

/** A CLI sandbox whose config lists `mirrors` for the origin, every host plain HTTP. */
async function envWith(mirrors: string[]) {
  const env = await cliEnv();
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({ indexes: [], registry: { plainHttp: [origin.host, empty.host, full.host, failingHost, deadHost], mirrors: { [origin.host]: mirrors } } }),
  );
  return env;
}

describe('registry.mirrors', () => {
  it('falls back from a dead mirror, a 503 and a 404 to the registry itself, and logs which source served each blob', async () => {
    const env = await envWith([deadHost, failingHost, empty.host]);
    const dest = await tempDir('mirror-pull-');
    const r = await runCli(['repo', 'pull', ref, '--dest', dest], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(dest, 'mirrored_rules.yaml'), 'utf8')).toBe(RULES);
    const log = messages(r.stderr);
    expect(log).toContainEqual(expect.stringMatching(new RegExp(`^mirror ${deadHost} of ${origin.host} could not serve manifest 1\\.0\\.0 \\(cannot reach ${deadHost}.*ECONNREFUSED.*\\); trying mirror ${failingHost}$`)));
    expect(log).toContainEqual(expect.stringMatching(new RegExp(`^mirror ${failingHost} of ${origin.host} could not serve manifest 1\\.0\\.0 \\(.*503.*\\); trying mirror ${empty.host}$`)));
    expect(log).toContainEqual(expect.stringMatching(new RegExp(`^mirror ${empty.host} of ${origin.host} could not serve manifest 1\\.0\\.0 \\(.*not found.*\\); trying ${origin.host} itself$`)));
    // The dead mirror is asked once, not for every request.
    expect(log.filter((m) => m.startsWith(`mirror ${deadHost}`))).toHaveLength(1);
    expect(log).toContainEqual(expect.stringMatching(new RegExp(`^blob sha256:[0-9a-f]{64} of ${origin.host}/acme/mirrored-rules served by ${origin.host} itself$`)));
  });

  it('a mirror that has the content serves it, even with the registry itself stopped when the pull is pinned by digest', async () => {
    const env = await envWith([deadHost, empty.host, full.host]);
    const dest = await tempDir('mirror-pull-');
    const r = await runCli(['repo', 'pull', ref, '--dest', dest], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(messages(r.stderr)).toContainEqual(expect.stringMatching(new RegExp(`^blob sha256:[0-9a-f]{64} of ${origin.host}/acme/mirrored-rules served by mirror ${full.host}$`)));

    // Installed by digest from a mirror only: the origin is unreachable (its port answers nothing).
    const offline = await cliEnv();
    const deadOrigin = `127.0.0.1:${await freePort()}`;
    await writeFile(offline.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [deadOrigin, full.host], mirrors: { [deadOrigin]: full.host } } }));
    const rules = await tempDir('mirror-install-');
    const install = await runCli(['artifact', 'install', `${deadOrigin}/acme/mirrored-rules@${digest}`, '--rulesfiles-dir', rules, '--plugins-dir', rules], { env: offline });
    expect(install.code, install.stderr).toBe(0);
    expect(await readFile(join(rules, 'mirrored_rules.yaml'), 'utf8')).toBe(RULES);
  });

  it('writes go to the registry itself, never to a mirror', async () => {
    const env = await envWith([empty.host]);
    const dir = await tempDir('mirror-push-');
    await writeFile(join(dir, 'pushed.yaml'), RULES);
    const r = await runCli(['repo', 'push', `${origin.host}/acme/pushed:1.0.0`, join(dir, 'pushed.yaml'), '--type', 'rulesfile', '--version', '1.0.0'], { env });
    expect(r.code, r.stderr).toBe(0);
    const direct = await cliEnv({ DIGINFRACTL_REGISTRY_PLAIN_HTTP: `${origin.host},${empty.host}` });
    expect((await runCli(['artifact', 'info', `${origin.host}/acme/pushed:1.0.0`], { env: direct })).code).toBe(0);
    expect((await runCli(['artifact', 'info', `${empty.host}/acme/pushed:1.0.0`], { env: direct })).code).toBe(1);
  });

  it('counts registry requests per source (the follow metrics)', async () => {
    const metrics = createFollowMetrics();
    const registry = { ...defaultConfig().registry, plainHttp: [origin.host, empty.host, deadHost], mirrors: { [origin.host]: [deadHost, empty.host] } };
    const c = createRegistryClient(registry, {}, { onResponse: (info) => metrics.onResponse(info) });
    try {
      const artifact = await resolveArtifact(c, parseOciReference(ref), AMD64);
      expect(artifact.ref.digest).toBe(digest);
    } finally {
      await c.close();
    }
    const text = await metrics.registry.metrics();
    const count = (labels: Record<string, string>) => metricValue(text, 'diginfractl_registry_requests_total', { registry: origin.host, ...labels });
    expect(count({ source: deadHost, code: 'error' })).toBe(1);
    expect(count({ source: empty.host, code: '404' })).toBeGreaterThanOrEqual(1);
    expect(count({ source: 'origin', code: '200' })).toBeGreaterThanOrEqual(2);
    expect(count({ source: empty.host, code: '200' })).toBe(0);
  });

  it('takes several mirrors as a YAML list or as hosts separated by spaces (also from the environment)', async () => {
    const env = await cliEnv({ DIGINFRACTL_REGISTRY_MIRRORS: `${origin.host}=${deadHost} ${full.host}`, DIGINFRACTL_REGISTRY_PLAIN_HTTP: `${origin.host},${full.host},${deadHost}` });
    const shown = await runCli(['config', 'show', '-o', 'json'], { env });
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(shown.stdout))).toContain(`"${origin.host}":"${deadHost} ${full.host}"`);
    const dest = await tempDir('mirror-pull-');
    const r = await runCli(['repo', 'pull', ref, '--dest', dest], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(messages(r.stderr)).toContainEqual(expect.stringContaining(`served by mirror ${full.host}`));
    const bad = await cliEnv();
    await writeFile(bad.DIGINFRACTL_CONFIG!, stringify({ registry: { mirrors: { [origin.host]: ['ok.example:5000', 'not a host'] } } }));
    const refused = await runCli(['config', 'validate', bad.DIGINFRACTL_CONFIG!], { env: bad });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`registry.mirrors.${origin.host}`);
  });
});
