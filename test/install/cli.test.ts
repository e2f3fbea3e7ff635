/**
 * `diginfractl artifact install` as a user runs it: the built CLI as a child process, with its own
 * config (DIGINFRACTL_CONFIG), XDG dirs and an index served from a file:// URL. Needs `npm run build`.
 */
import { access, mkdir, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DIR_LOCK_NAME, currentOwner } from '../../src/install/dir-lock.js';
import { readLockfile } from '../../src/install/lockfile.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { CLI, cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { RULES_FIXTURE, push, pushRules } from '../helpers/push.js';
import { clientFor, fakePlugin, modeOf, pushPlugin } from './setup.js';

let reg: TestRegistry;
let client: RegistryClient;
let indexUrl: string;
const rulesBytes = await readFile(RULES_FIXTURE);

beforeAll(async () => {
  await access(CLI).catch(() => {
    throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  });
  reg = await startRegistry();
  client = clientFor(reg);
  await pushPlugin(client, reg.host, 'acme/json', 'json', '0.7.0', { addFloatingTags: true });
  await pushPlugin(client, reg.host, 'acme/json', 'json', '1.0.0', { addFloatingTags: true });
  await pushRules(client, `${reg.host}/acme/falco-rules:3.0.0`, '3.0.0', { name: 'falco-rules', dependencies: [{ name: 'json', version: '0.7.0' }], addFloatingTags: true });
  await pushRules(client, `${reg.host}/acme/extra-rules:1.0.0`, '1.0.0', { name: 'extra-rules', content: '- list: extra\n  items: []\n', fileName: 'extra.yaml' });
  await pushRules(client, `${reg.host}/acme/more-rules:1.0.0`, '1.0.0', { name: 'more-rules', content: '- list: more\n  items: []\n', fileName: 'more.yaml' });
  await pushRules(client, `${reg.host}/acme/other-rules:1.0.0`, '1.0.0', { name: 'other-rules', content: '- list: o\n  items: []\n', fileName: 'other.yaml', dependencies: [{ name: 'json', version: '1.0.0' }] });
  const indexDir = await tempDir('diginfractl-index-');
  const indexFile = join(indexDir, 'index.yaml');
  await writeFile(
    indexFile,
    stringify([
      { name: 'falco-rules', type: 'rulesfile', registry: reg.host, repository: 'acme/falco-rules', description: 'Falco rules', keywords: ['rules'] },
      { name: 'json', type: 'plugin', registry: reg.host, repository: 'acme/json', description: 'JSON plugin', keywords: ['json'] },
    ]),
  );
  indexUrl = pathToFileURL(indexFile).href;
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

interface Node {
  env: NodeJS.ProcessEnv & { HOME: string };
  rules: string;
  plugins: string;
}

/** A sandboxed "node": XDG dirs, a config file with the index, the registry as plain HTTP and `install`. */
async function node(install: Record<string, unknown> = {}): Promise<Node> {
  const env = await cliEnv();
  const rules = join(env.HOME, 'etc/diginfra');
  const plugins = join(env.HOME, 'plugins');
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({
      indexes: [{ name: 'local', url: indexUrl }],
      registry: { plainHttp: [reg.host] },
      install: { rulesfilesDir: rules, pluginsDir: plugins, ...install },
    }),
  );
  return { env, rules, plugins };
}

describe('diginfractl artifact install', () => {
  it('with no REF installs install.refs from the config, through the index, and prints a JSON summary', async () => {
    const n = await node({ refs: ['falco-rules:3'], platform: 'linux/arm64', engineVersion: '0.58.0' });
    const r = await runCli(['artifact', 'install', '-o', 'json'], { env: n.env });
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      platform: string;
      installed: { name: string; type: string; version: string; ref: string; digest: string; platform?: string; files: string[] }[];
      lockfile: string;
      downloaded: { blobs: number };
    };
    expect(out.platform).toBe('linux/arm64');
    expect(out.installed.map((a) => `${a.type} ${a.name} ${a.version}`)).toEqual(['rulesfile falco-rules 3.0.0', 'plugin json 0.7.0']);
    const [rules, json] = out.installed;
    expect(rules!.files).toEqual([join(n.rules, 'falco_rules.yaml')]);
    expect(rules!.ref).toBe(`${reg.host}/acme/falco-rules:3.0.0@${rules!.digest}`);
    expect(rules!.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(json!.platform).toBe('linux/arm64');
    expect(json!.files).toEqual([join(n.plugins, 'libjson.so')]);
    expect(out.lockfile).toBe(join(n.rules, 'diginfractl.lock'));
    expect(out.downloaded.blobs).toBe(2);
    expect(await readFile(join(n.rules, 'falco_rules.yaml'))).toEqual(rulesBytes);
    expect(await readFile(join(n.plugins, 'libjson.so'))).toEqual(fakePlugin('json', '0.7.0', 'linux/arm64'));
    expect(await modeOf(join(n.plugins, 'libjson.so'))).toBe(0o755);
    expect(await modeOf(join(n.rules, 'falco_rules.yaml'))).toBe(0o644);
    // Not a TTY: logs are pino JSON lines on stderr.
    const logs = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(logs.filter((l) => l.msg === 'blob downloaded')).toHaveLength(2);

    // Again: nothing downloaded, blobs from the XDG cache.
    const again = await runCli(['artifact', 'install', '-o', 'json'], { env: n.env });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).downloaded.blobs).toBe(0);
    const cacheDir = join(n.env.XDG_CACHE_HOME!, 'diginfractl', 'blobs', 'sha256');
    const cache = await readdir(cacheDir);
    expect(cache.length).toBeGreaterThanOrEqual(2);

    // The cache is pruned by last use: a blob no install used for cacheMaxAge (30 days) goes after the
    // next install; what this install used stays (its mtime is refreshed on use), and `0` keeps all.
    const month = (Date.now() - 31 * 24 * 3_600_000) / 1000;
    const stale = join(cacheDir, 'ab'.repeat(32));
    await writeFile(stale, 'an old version nobody installs any more');
    await utimes(stale, month, month);
    for (const f of cache) await utimes(join(cacheDir, f), month, month);
    const keep = await runCli(['artifact', 'install'], { env: { ...n.env, DIGINFRACTL_CACHE_MAX_AGE: '0' } });
    expect(keep.code).toBe(0);
    expect(await readdir(cacheDir)).toContain('ab'.repeat(32));
    const pruned = await runCli(['artifact', 'install', '-o', 'json'], { env: n.env });
    expect(pruned.code).toBe(0);
    expect(JSON.parse(pruned.stdout).downloaded.blobs).toBe(0);
    expect((await readdir(cacheDir)).sort()).toEqual([...cache].sort());
    const bad = await runCli(['artifact', 'install'], { env: { ...n.env, DIGINFRACTL_CACHE_MAX_AGE: 'a month' } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('DIGINFRACTL_CACHE_MAX_AGE: "a month" is not a duration');
  });

  it('installs a direct reference with flags over the config, table output', async () => {
    const n = await node();
    const rules = join(n.env.HOME, 'other-rules-dir');
    const lock = join(n.env.HOME, 'locks', 'x.lock');
    const r = await runCli(
      ['artifact', 'install', `${reg.host}/acme/json:0`, '--plugins-dir', join(n.env.HOME, 'p'), '--rulesfiles-dir', rules, '--platform', 'linux/amd64', '--lockfile', lock, '--plain-http'],
      { env: n.env },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`installed plugin json 0.7.0 (linux/amd64) from ${reg.host}/acme/json:0.7.0@sha256:`);
    expect(r.stdout).toContain(join(n.env.HOME, 'p', 'libjson.so'));
    expect(await readFile(join(n.env.HOME, 'p', 'libjson.so'))).toEqual(fakePlugin('json', '0.7.0', 'linux/amd64'));
    expect(await readFile(lock, 'utf8')).toContain(`requested:\n      - ${reg.host}/acme/json:0\n`);
  });

  it('exit codes: 2 for usage errors, 1 for failures, with the message on stderr', async () => {
    const n = await node();
    expect((await runCli(['artifact', 'install', 'Bad Ref!'], { env: n.env })).code).toBe(2);
    expect((await runCli(['artifact', 'install', 'falco-rules', '--platform', 'nonsense'], { env: n.env })).code).toBe(2);
    expect((await runCli(['artifact', 'install', 'falco-rules', '--no-such-flag'], { env: n.env })).code).toBe(2);
    const none = await runCli(['artifact', 'install'], { env: n.env });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('nothing to install');

    const conflict = await runCli(['artifact', 'install', 'falco-rules:3.0.0', `${reg.host}/acme/other-rules:1.0.0`], { env: n.env });
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('falco-rules 3.0.0 needs json >=0.7.0 <1.0.0');
    expect(conflict.stderr).toContain('other-rules 1.0.0 needs json >=1.0.0 <2.0.0');
    await expect(access(n.rules)).rejects.toThrow();

    const engine = await runCli(['artifact', 'install', 'falco-rules:3', '--engine-version', '0.40.0'], { env: n.env });
    expect(engine.code).toBe(1);
    expect(engine.stderr).toContain('requires engine version 0.57.0');

    const platform = await runCli(['artifact', 'install', 'json:1.0.0', '--platform', 'linux/riscv64'], { env: n.env });
    expect(platform.code).toBe(1);
    expect(platform.stderr).toContain('it has: linux/amd64, linux/arm64');

    const frozen = await runCli(['artifact', 'install', 'json:1.0.0', '--frozen'], { env: n.env });
    expect(frozen.code).toBe(1);
    expect(frozen.stderr).toContain('--frozen');
  });

  it('--frozen via the CLI installs what the lock says', async () => {
    const n = await node({ platform: 'linux/amd64' });
    expect((await runCli(['artifact', 'install', 'json:0'], { env: n.env })).code).toBe(0);
    const r = await runCli(['artifact', 'install', 'json:0', '--frozen', '-o', 'json'], { env: n.env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).installed[0].version).toBe('0.7.0');
    const miss = await runCli(['artifact', 'install', 'json:1', '--frozen'], { env: n.env });
    expect(miss.code).toBe(1);
    expect(miss.stderr).toContain('"json:1" is not in the lock file');
  });

  it('waits for an install lock held by a live process, then fails with LOCKED (exit 1) and writes nothing', async () => {
    const n = await node({ refs: ['falco-rules:3'], platform: 'linux/amd64' });
    // This test process holds the rules dir's lock: alive, on this host, in this PID namespace.
    await mkdir(n.rules, { recursive: true });
    const lock = join(n.rules, DIR_LOCK_NAME);
    await writeFile(lock, JSON.stringify(currentOwner()));
    const started = Date.now();
    const r = await runCli(['artifact', 'install', '--lock-timeout', '1'], { env: n.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${n.rules} is locked by another install (pid ${process.pid} on `);
    expect(r.stderr).toContain('gave up after 1 s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(await readdir(n.rules)).toEqual([DIR_LOCK_NAME]);
    // No file, and no lock of the failed run left behind anywhere.
    expect(await readdir(n.plugins).catch(() => [])).toEqual([]);
    expect(JSON.parse(await readFile(lock, 'utf8')).pid).toBe(process.pid);
  });

  it('concurrent installs of different artifacts into the same dirs: all succeed, one after the other, and the lock file has them all', async () => {
    const n = await node({ platform: 'linux/amd64' });
    const runs = await Promise.all([
      runCli(['artifact', 'install', 'falco-rules:3', '--lock-timeout', '30'], { env: n.env }),
      runCli(['artifact', 'install', 'falco-rules:3', '--lock-timeout', '30'], { env: n.env }),
      runCli(['artifact', 'install', `${reg.host}/acme/extra-rules:1.0.0`, '--lock-timeout', '30'], { env: n.env }),
      runCli(['artifact', 'install', `${reg.host}/acme/more-rules:1.0.0`, '--lock-timeout', '30'], { env: n.env }),
    ]);
    for (const r of runs) expect({ code: r.code, stderr: r.stderr.split('\n').filter((l) => l.startsWith('error') || l.startsWith('hint')) }).toEqual({ code: 0, stderr: [] });
    expect(await readFile(join(n.rules, 'falco_rules.yaml'))).toEqual(rulesBytes);
    expect(await readFile(join(n.rules, 'extra.yaml'), 'utf8')).toBe('- list: extra\n  items: []\n');
    expect(await readFile(join(n.rules, 'more.yaml'), 'utf8')).toBe('- list: more\n  items: []\n');
    expect(await readFile(join(n.plugins, 'libjson.so'))).toEqual(fakePlugin('json', '0.7.0', 'linux/amd64'));
    expect((await readdir(n.rules)).sort()).toEqual(['diginfractl.lock', 'extra.yaml', 'falco_rules.yaml', 'more.yaml']);
    expect(await readdir(n.plugins)).toEqual(['libjson.so']);
    // Each run read the lock file under the install lock: no run's entries were lost.
    const lock = await readLockfile(join(n.rules, 'diginfractl.lock'));
    expect(lock!.artifacts.map((a) => a.name).sort()).toEqual(['extra-rules', 'falco-rules', 'json', 'more-rules']);
  });
});

describe('artifact types other than rulesfile and plugin', () => {
  it('an asset goes to the directory given for its type (--dir, install.dirs, the environment); without one nothing is written', async () => {
    const data = Buffer.from([0x00, 0xff, 0x10, 0x42, 0x0a]);
    const src = join(await tempDir('asset-src-'), 'geo.mmdb');
    await writeFile(src, data);
    // Rules that need the asset, as a dependency like any other.
    await push(client, `${reg.host}/acme/geo:1.0.0`, { type: 'asset', version: '1.0.0', name: 'geo', files: [src] });
    await pushRules(client, `${reg.host}/acme/geo-rules:1.0.0`, '1.0.0', { name: 'geo-rules', content: '- list: geo\n  items: []\n', fileName: 'geo_rules.yaml', dependencies: [{ name: 'geo', version: '1.0.0' }] });
    const n = await node();
    const ref = `${reg.host}/acme/geo-rules:1.0.0`;

    const refused = await runCli(['artifact', 'install', ref], { env: n.env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('geo 1.0.0 is of type "asset", and no directory is set for that type');
    expect(refused.stderr).toContain('--dir asset=DIR, or install.dirs.asset in the config');
    expect(await readdir(n.env.HOME)).not.toContain('etc');

    const assets = join(n.env.HOME, 'assets');
    const r = await runCli(['artifact', 'install', ref, '--dir', `asset=${assets}`, '-o', 'json'], { env: n.env });
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    expect(await readFile(join(assets, 'geo.mmdb'))).toEqual(data);
    expect(await modeOf(join(assets, 'geo.mmdb'))).toBe(0o644);
    expect(await readFile(join(n.rules, 'geo_rules.yaml'), 'utf8')).toBe('- list: geo\n  items: []\n');
    const lock = await readLockfile(join(n.rules, 'diginfractl.lock'));
    expect(lock!.artifacts.find((a) => a.name === 'geo')).toMatchObject({ type: 'asset', dir: assets, files: ['geo.mmdb'] });

    // The same from the environment, into another node.
    const m = await node();
    const other = join(m.env.HOME, 'data');
    const viaEnv = await runCli(['artifact', 'install', `${reg.host}/acme/geo:1.0.0`], { env: { ...m.env, DIGINFRACTL_INSTALL_DIRS: `asset=${other}` } });
    expect(viaEnv.code).toBe(0);
    expect(await readFile(join(other, 'geo.mmdb'))).toEqual(data);

    // rulesfile and plugin have keys of their own; a bad --dir is a usage error.
    const own = await runCli(['artifact', 'install', ref, '--dir', `rulesfile=${assets}`], { env: n.env });
    expect(own.code).toBe(2);
    expect(own.stderr).toContain('"rulesfile" has a key of its own (rulesfilesDir)');
    const bad = await runCli(['artifact', 'install', ref, '--dir', 'asset'], { env: n.env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--dir "asset" must be TYPE=DIR');

    // A type named like an Object property has no directory either (not Object's own).
    await push(client, `${reg.host}/acme/odd:1.0.0`, { type: 'constructor', version: '1.0.0', name: 'odd', files: [src] });
    const odd = await runCli(['artifact', 'install', `${reg.host}/acme/odd:1.0.0`, '--dir', `asset=${assets}`], { env: n.env });
    expect(odd.code).toBe(1);
    expect(odd.stderr).toContain('odd 1.0.0 is of type "constructor", and no directory is set for that type');
  });
});
