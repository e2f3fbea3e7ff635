#!/usr/bin/env node
/**
 * What a fleet costs the origin registry, with and without a cluster-local pull-through cache (issue 14,
 * "Large fleets"; the chart's pullThroughCache).
 *
 *   node bench/fleet.mjs [--nodes 30] [--concurrency 8] [--intervals 3] [--cli PATH] [--json]
 *
 * An origin docker-registry on loopback, behind a counting proxy (test/k8s/counting-proxy.ts) that
 * records every request the origin answers. Mode "direct": every node talks to the origin. Mode "cache":
 * a second docker-registry in proxy mode (`proxy.remoteurl`, started without any REGISTRY_* variable)
 * stands in front of it, and every node's `registry.mirrors` points at it, as the chart configures the
 * agents. A node is a directory (rules, plugins, state, blob cache) and its processes: in interval 0
 * every node runs `artifact install` (a new DaemonSet); in each later interval every node runs
 * `artifact follow --once` (the one check per ref a follower makes per interval); a new rules version
 * is published before interval 2. At most --concurrency processes run at once. Prints, per mode and
 * interval, the origin's requests per node, blob downloads, manifest requests and bytes.
 *
 * Needs `npm run build` and /usr/bin/docker-registry (scripts/bootstrap.sh). Loopback only; the
 * registries and temp files are removed at the end, on an error, and on Ctrl-C.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { requestKind, startCountingProxy } from '../test/k8s/counting-proxy.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;
const REGISTRY_BIN = '/usr/bin/docker-registry';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const NODES = Number(arg('nodes', 30));
const CONCURRENCY = Number(arg('concurrency', 8));
const INTERVALS = Number(arg('intervals', 3));
const CLI = resolve(arg('cli', join(ROOT, 'dist/bin/diginfractl.cjs')));
const JSON_OUT = process.argv.includes('--json');
for (const [name, v, max] of [['nodes', NODES, 500], ['concurrency', CONCURRENCY, 32], ['intervals', INTERVALS, 10]]) {
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`--${name} must be an integer from 1 to ${max}`);
}
if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run "npm run build" first`);
if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing; run scripts/bootstrap.sh`);

const cleanups = [];
async function cleanUp() {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void cleanUp().finally(() => process.exit(130)));

async function freePort() {
  const s = createServer();
  await new Promise((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address();
  await new Promise((ok) => s.close(ok));
  return port;
}

/** A docker-registry on loopback (proxy mode when `remoteurl` is given); stopped by cleanUp. */
async function startRegistry(dir, remoteurl) {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const config = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') }, delete: { enabled: true } },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
    ...(remoteurl && { proxy: { remoteurl } }),
  };
  await writeFile(join(dir, 'config.yml'), stringify(config));
  // distribution reads every REGISTRY_* variable as a config override.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { env, stdio: 'ignore' });
  child.on('error', (err) => console.error(`docker-registry: ${err.message}`));
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(50)) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) return `127.0.0.1:${port}`;
  }
  throw new Error(`docker-registry did not answer on 127.0.0.1:${port}`);
}

/** The CLI as a child process; rejects with its stderr when it fails. */
function cli(args, env) {
  return new Promise((ok, fail) => {
    execFile(NODE, [CLI, ...args], { env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => (err ? fail(new Error(`diginfractl ${args.slice(0, 2).join(' ')}: ${stderr || err.message}`)) : ok()));
  });
}

/** Runs `task(i)` for i in 0..count-1, at most CONCURRENCY at a time. */
async function bounded(count, task) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, async () => {
    while (next < count) await task(next++);
  }));
}

const work = await mkdtemp(join(tmpdir(), 'diginfractl-bench-fleet-'));
cleanups.push(() => rm(work, { recursive: true, force: true }));
const results = [];
try {
  const baseEnv = { PATH: process.env.PATH, HOME: work };
  const origin = await startRegistry(join(work, 'origin'));
  const counting = await startCountingProxy(`http://${origin}`);
  cleanups.push(() => counting.close());
  const cache = await startRegistry(join(work, 'cache'), `http://${counting.host}`);

  // Published straight to the origin (not counted): a rules file followed by its floating tag, and a
  // plugin with a build for amd64 and arm64.
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  const rules = (v) => `- list: fleet_bench\n  items: [${v}]\n`;
  const pushEnv = { ...baseEnv, XDG_CONFIG_HOME: join(work, 'pusher') };
  const pushRules = async (version) => {
    await writeFile(join(src, 'fleet_rules.yaml'), rules(version));
    await cli(['repo', 'push', `${origin}/acme/fleet-rules:${version}`, join(src, 'fleet_rules.yaml'), '--type', 'rulesfile', '--version', version, '--add-floating-tags', '--plain-http'], pushEnv);
  };
  await pushRules('1.0.0');
  for (const arch of ['amd64', 'arm64']) {
    await mkdir(join(src, arch), { recursive: true });
    await writeFile(join(src, arch, 'libjson.so'), Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), randomBytes(256 * 1024)]));
  }
  await cli(['repo', 'push', `${origin}/acme/json:0.7.0`, join(src, 'amd64/libjson.so'), join(src, 'arm64/libjson.so'), '--type', 'plugin', '--version', '0.7.0', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--plain-http'], pushEnv);

  const rulesRef = `${counting.host}/acme/fleet-rules:1`;
  const pluginRef = `${counting.host}/acme/json:0.7.0`;
  for (const mode of ['direct', 'cache']) {
    const registry = mode === 'cache' ? { mirrors: { [counting.host]: cache }, plainHttp: [counting.host, cache] } : { mirrors: {}, plainHttp: [counting.host] };
    for (let interval = 0; interval < INTERVALS; interval++) {
      if (interval === 2) await pushRules(mode === 'direct' ? '1.1.0' : '1.2.0');
      const before = counting.seen.length;
      const t0 = Date.now();
      await bounded(NODES, async (n) => {
        const dir = join(work, mode, `node-${n}`);
        await mkdir(dir, { recursive: true });
        const config = join(dir, 'diginfractl.yaml');
        if (interval === 0) await writeFile(config, stringify({ indexes: [], registry }));
        const env = { ...baseEnv, XDG_CACHE_HOME: join(dir, 'cache'), XDG_CONFIG_HOME: join(dir, 'config'), DIGINFRACTL_CONFIG: config };
        const dirs = ['--rulesfiles-dir', join(dir, 'rules'), '--plugins-dir', join(dir, 'plugins')];
        if (interval === 0) await cli(['artifact', 'install', rulesRef, pluginRef, ...dirs, '--lockfile', join(dir, 'lock')], env);
        else await cli(['artifact', 'follow', rulesRef, '--once', ...dirs, '--state-dir', join(dir, 'state')], env);
      });
      const seen = counting.seen.slice(before);
      const count = (kind, method) => seen.filter((r) => requestKind(r.path) === kind && (!method || r.method === method)).length;
      results.push({
        mode,
        interval,
        what: interval === 0 ? 'artifact install' : interval === 2 ? 'follow --once (new version)' : 'follow --once (no change)',
        seconds: (Date.now() - t0) / 1000,
        originRequests: seen.length,
        perNode: seen.length / NODES,
        blobDownloads: count('blob', 'GET'),
        manifestRequests: count('manifest'),
        pings: count('ping'),
        originMB: seen.reduce((sum, r) => sum + r.bytes, 0) / 1024 / 1024,
      });
    }
  }
} finally {
  await cleanUp();
}

console.log(`fleet: ${NODES} nodes, ${CONCURRENCY} processes at a time, ${INTERVALS} intervals; what the origin registry served`);
console.log(['mode', 'interval', 'what', 'origin requests', 'per node', 'blob downloads', 'manifest requests', 'GET /v2/', 'MiB from origin', 's'].join(' | '));
for (const r of results) {
  console.log([r.mode, r.interval, r.what, r.originRequests, r.perNode.toFixed(2), r.blobDownloads, r.manifestRequests, r.pings, r.originMB.toFixed(2), r.seconds.toFixed(1)].join(' | '));
}
const total = (mode, key) => results.filter((r) => r.mode === mode).reduce((s, r) => s + r[key], 0);
console.log(`origin requests per node per interval: direct ${(total('direct', 'originRequests') / NODES / INTERVALS).toFixed(2)}, cache ${(total('cache', 'originRequests') / NODES / INTERVALS).toFixed(2)}`);
console.log(`MiB from the origin: direct ${total('direct', 'originMB').toFixed(2)}, cache ${total('cache', 'originMB').toFixed(2)}`);
if (JSON_OUT) console.log(JSON.stringify({ nodes: NODES, concurrency: CONCURRENCY, intervals: INTERVALS, results }));
