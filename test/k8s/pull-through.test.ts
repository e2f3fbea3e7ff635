/**
 * The pull-through cache of large fleets, for real: CNCF distribution (`docker-registry`) in proxy mode
 * in front of an origin registry, with a counting proxy of the test's own between the two, so the test
 * sees every request the origin answered. A fleet of nodes (each one `diginfractl artifact install`
 * process with its own directories and blob cache, at most 8 at a time) installs through the cache with
 * `registry.mirrors`, as the chart's pullThroughCache configures them.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliEnv, requireCli, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor, pushPlugin } from '../install/setup.js';
import { requestKind, startCountingProxy, type CountingProxy, type SeenRequest } from './counting-proxy.js';

const NODES = 50;
const CONCURRENCY = 8;
const RULES = '- list: fleet_rules\n  items: [a, b, c]\n';
/** This machine's platform, as the CLI detects it. */
const PLATFORM = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;

let origin: TestRegistry;
let counting: CountingProxy;
let cache: TestRegistry;
let root: string;
let refs: string[];

beforeAll(async () => {
  requireCli('artifact', ['install']);
  origin = await startRegistry();
  counting = await startCountingProxy(origin.url);
  // distribution reads every REGISTRY_* variable as config: the harness starts it without them.
  cache = await startRegistry({ proxy: { remoteurl: `http://${counting.host}` } });
  root = await tempDir('diginfractl-fleet-');
  const client = clientFor(origin);
  try {
    await pushRules(client, `${origin.host}/acme/fleet-rules:1.0.0`, '1.0.0', { content: RULES, fileName: 'fleet_rules.yaml' });
    await pushPlugin(client, origin.host, 'acme/json', 'json', '0.7.0');
  } finally {
    await client.close();
  }
  // The nodes name the origin (through the counting proxy); the mirror sends them to the cache.
  refs = [`${counting.host}/acme/fleet-rules:1.0.0`, `${counting.host}/acme/json:0.7.0`];
}, 60_000);

afterAll(async () => {
  await cache?.stop();
  await counting?.close();
  await origin?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

/** One node: its own dirs, blob cache and config (the chart's mirror setting), one install process. */
async function installOnNode(name: string, registry: { mirrors: Record<string, string>; plainHttp: string[] }) {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'diginfractl.yaml');
  await writeFile(config, stringify({ indexes: [], registry }));
  const env = await cliEnv({ XDG_CACHE_HOME: join(dir, 'cache'), DIGINFRACTL_CONFIG: config });
  const r = await runCli(['artifact', 'install', ...refs, '--rulesfiles-dir', join(dir, 'rules'), '--plugins-dir', join(dir, 'plugins'), '--lockfile', join(dir, 'lock')], { env, timeoutMs: 120_000 });
  expect(r.code, `${name}: ${r.stderr}`).toBe(0);
  expect(await readFile(join(dir, 'rules', 'fleet_rules.yaml'), 'utf8')).toBe(RULES);
  expect((await readFile(join(dir, 'plugins', 'libjson.so'))).toString('latin1')).toContain(`json 0.7.0 ${PLATFORM}\n`);
  await rm(join(env.HOME), { recursive: true, force: true });
}

/** Runs `count` nodes, `CONCURRENCY` at a time. */
async function fleet(prefix: string, count: number, registry: { mirrors: Record<string, string>; plainHttp: string[] }): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await installOnNode(`${prefix}-${next++}`, registry);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

function tally(seen: SeenRequest[]): { blobs: Map<string, number>; manifests: number; manifestsByDigest: Map<string, number>; total: number } {
  const blobs = new Map<string, number>();
  const manifestsByDigest = new Map<string, number>();
  let manifests = 0;
  for (const r of seen) {
    const kind = requestKind(r.path);
    if (kind === 'blob' && r.method === 'GET') blobs.set(r.path, (blobs.get(r.path) ?? 0) + 1);
    if (kind === 'manifest') {
      manifests++;
      if (/\/manifests\/sha256:/.test(r.path) && r.method === 'GET') manifestsByDigest.set(r.path, (manifestsByDigest.get(r.path) ?? 0) + 1);
    }
  }
  return { blobs, manifests, manifestsByDigest, total: seen.length };
}

describe(`a fleet of ${NODES} nodes installing through a pull-through cache`, () => {
  it('costs the origin each blob on the first node only, and one tag lookup per ref and node at most', async () => {
    const viaCache = { mirrors: { [counting.host]: cache.host }, plainHttp: [counting.host, cache.host] };
    // The first node fills the cache; then the fleet, 8 at a time.
    await installOnNode('first', viaCache);
    const afterFirst = tally(counting.seen);
    // A rules file (config and layer) and this node's build of a plugin (config and layer). On a miss,
    // distribution 2.8 fetches a blob twice from the origin: once to store it, once to stream it.
    expect([...afterFirst.blobs.values()].every((n) => n <= 2), JSON.stringify([...afterFirst.blobs])).toBe(true);
    const blobsNeeded = afterFirst.blobs.size;
    expect(blobsNeeded).toBe(4);

    await fleet('node', NODES, viaCache);
    const all = tally(counting.seen);
    // No blob was fetched from the origin again: the cache served all 50 nodes.
    expect(all.blobs).toEqual(afterFirst.blobs);
    // Manifests by digest are kept by the cache too; a tag is looked up at the origin again (distribution
    // 2.8 keeps no tag TTL), so the fleet costs the origin at most one small manifest request per ref and node.
    expect([...all.manifestsByDigest.values()].every((n) => n === 1), JSON.stringify([...all.manifestsByDigest])).toBe(true);
    expect(all.manifests - afterFirst.manifests).toBeLessThanOrEqual(NODES * refs.length);
    expect(counting.seen.filter((r) => r.status >= 500)).toEqual([]);
  }, 300_000);

  it('without the cache, the origin serves every blob to every node', async () => {
    const before = counting.seen.length;
    await fleet('direct', 10, { mirrors: {}, plainHttp: [counting.host] });
    const direct = tally(counting.seen.slice(before));
    expect([...direct.blobs.values()].every((n) => n === 10), JSON.stringify([...direct.blobs])).toBe(true);
  }, 120_000);
});
