/**
 * The installer against a real registry: platforms, dependencies, conflicts, requirements, atomicity,
 * the blob cache, the lock file and --frozen.
 */
import { readFile, readdir, rm, stat, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLockfile } from '../../src/install/lockfile.js';
import type { LoadedIndex } from '../../src/indexes/types.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { blobPath, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { errorOf } from '../helpers/errors.js';
import { exists, tempFile } from '../helpers/fs.js';
import { RULES_FIXTURE, push, pushRules } from '../helpers/push.js';
import {
  AMD64,
  ARM64,
  clientFor,
  counter,
  dirs,
  fakePlugin,
  install,
  modeOf,
  pushPlugin,
  seed,
  snapshot,
} from './setup.js';

let reg: TestRegistry;
let client: RegistryClient;
let host: string;
const requests = counter();
const rulesBytes = await readFile(RULES_FIXTURE);

beforeAll(async () => {
  reg = await startRegistry();
  host = reg.host;
  client = clientFor(reg, requests);
  // json plugin: 0.7.0, 0.7.2 (two platforms each) and 1.0.0, beside the rules that need it.
  await pushPlugin(client, host, 'acme/json', 'json', '0.7.0', { addFloatingTags: true });
  await pushPlugin(client, host, 'acme/json', 'json', '0.7.2', { addFloatingTags: true });
  await pushPlugin(client, host, 'acme/json', 'json', '1.0.0', { addFloatingTags: true });
  await pushRules(client, `${host}/acme/falco-rules:3.0.0`, '3.0.0', { name: 'falco-rules', dependencies: [{ name: 'json', version: '0.7.0' }], addFloatingTags: true });
  await pushRules(client, `${host}/acme/other-rules:1.0.0`, '1.0.0', {
    name: 'other-rules',
    content: '- required_engine_version: 0.50.0\n- list: other\n  items: []\n',
    fileName: 'other_rules.yaml',
    dependencies: [{ name: 'json', version: '1.0.0' }],
  });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

describe('artifact install', () => {
  it.each([
    { platform: ARM64, name: 'linux/arm64' },
    { platform: AMD64, name: 'linux/amd64' },
  ])('installs a rules file and its two-platform plugin dependency for $name', async ({ platform, name }) => {
    const d = await dirs();
    const result = await install(client, d, [`${host}/acme/falco-rules:3.0.0`], { platform, engineVersion: '0.58.0' });
    expect(result.installed.map((a) => `${a.type} ${a.name} ${a.version}`)).toEqual(['rulesfile falco-rules 3.0.0', 'plugin json 0.7.2']);

    const rules = join(d.rules, 'falco_rules.yaml');
    const plugin = join(d.plugins, 'libjson.so');
    expect(await readFile(rules)).toEqual(rulesBytes);
    expect(await modeOf(rules)).toBe(0o644);
    expect(await readFile(plugin)).toEqual(fakePlugin('json', '0.7.2', name));
    expect(await modeOf(plugin)).toBe(0o755);
    // Nothing but the files, the lock file and no leftovers (staging dirs, install locks).
    expect((await readdir(d.rules)).sort()).toEqual(['diginfractl.lock', 'falco_rules.yaml']);
    expect(await readdir(d.plugins)).toEqual(['libjson.so']);

    const json = result.installed[1]!;
    expect(json.platform).toBe(name);
    expect(json.requiredBy).toEqual(['falco-rules 3.0.0']);
    expect(json.files).toEqual([plugin]);
    expect(json.digest).not.toBe(json.manifestDigest);

    const lock = await readLockfile(d.lockfile);
    const byName = Object.fromEntries(lock!.artifacts.map((a) => [a.name, a]));
    expect(byName['falco-rules']).toMatchObject({
      type: 'rulesfile',
      version: '3.0.0',
      requested: [`${host}/acme/falco-rules:3.0.0`],
      registry: host,
      repository: 'acme/falco-rules',
      tag: '3.0.0',
      dependencies: ['json'],
      dir: d.rules,
      files: ['falco_rules.yaml'],
    });
    expect(byName['falco-rules']!.digest).toBe(byName['falco-rules']!.manifestDigest);
    expect(byName.json).toMatchObject({ type: 'plugin', version: '0.7.2', repository: 'acme/json', tag: '0.7.2', platform: name, dir: d.plugins, files: ['libjson.so'], digest: json.digest, manifestDigest: json.manifestDigest });
    expect(byName.json!.requested).toBeUndefined();
  });

  it('refuses conflicting dependency versions, naming both requirers, and writes nothing', async () => {
    const d = await dirs();
    await seed(d.rules, 'keep.yaml', 'old\n');
    const before = { rules: await snapshot(d.rules), plugins: await snapshot(d.plugins) };
    const err = await errorOf(install(client, d, [`${host}/acme/falco-rules:3.0.0`, `${host}/acme/other-rules:1.0.0`]));
    expect(err.code).toBe('DEPENDENCY_CONFLICT');
    expect(err.message).toContain('falco-rules 3.0.0 needs json >=0.7.0 <1.0.0');
    expect(err.message).toContain('other-rules 1.0.0 needs json >=1.0.0 <2.0.0');
    expect({ rules: await snapshot(d.rules), plugins: await snapshot(d.plugins) }).toEqual(before);
  });

  it('lists the platforms that exist when there is no build for this one', async () => {
    const d = await dirs();
    const err = await errorOf(install(client, d, [`${host}/acme/json:0.7.2`], { platform: { os: 'linux', architecture: 's390x' } }));
    expect(err.code).toBe('PLATFORM_NOT_FOUND');
    expect(err.message).toContain('linux/s390x');
    expect(err.message).toContain('linux/amd64, linux/arm64');
    expect(await snapshot(d.plugins)).toEqual({});
  });

  it('refuses an install whose engine requirement is not met', async () => {
    const d = await dirs();
    const err = await errorOf(install(client, d, [`${host}/acme/falco-rules:3.0.0`], { engineVersion: '0.56.0' }));
    expect(err.code).toBe('REQUIREMENT_UNMET');
    expect(err.message).toContain('falco-rules 3.0.0 requires engine version 0.57.0');
    expect(err.message).toContain('0.56.0');
    expect(await snapshot(d.rules)).toEqual({});
    expect(await snapshot(d.plugins)).toEqual({});
    // Another major is refused too; a newer minor is fine.
    expect((await errorOf(install(client, d, [`${host}/acme/falco-rules:3.0.0`], { engineVersion: '1.0.0' }))).code).toBe('REQUIREMENT_UNMET');
    const ok = await install(client, d, [`${host}/acme/falco-rules:3.0.0`], { engineVersion: '0.57.3' });
    expect(ok.installed).toHaveLength(2);
  });

  it('applies --allowed-types to dependencies and --type as a filter', async () => {
    const d = await dirs();
    const err = await errorOf(install(client, d, [`${host}/acme/falco-rules:3.0.0`], { allowedTypes: ['rulesfile'] }));
    expect(err.code).toBe('TYPE_NOT_ALLOWED');
    expect(err.message).toContain('json 0.7.2 is a plugin (a dependency of falco-rules 3.0.0)');
    expect(await snapshot(d.rules)).toEqual({});

    const filtered = await install(client, d, [`${host}/acme/falco-rules:3.0.0`, `${host}/acme/json:0.7.2`], { type: 'rulesfile' });
    expect(filtered.installed.map((a) => a.name)).toEqual(['falco-rules']);
    expect(filtered.skipped.map((s) => `${s.type} ${s.name} ${s.version}`)).toEqual(['plugin json 0.7.2']);
    expect(filtered.warnings.some((w) => w.includes('--type rulesfile'))).toBe(true);
    expect(await snapshot(d.plugins)).toEqual({});

    const noDeps = await install(client, await dirs(), [`${host}/acme/falco-rules:3.0.0`], { resolveDeps: false, allowedTypes: ['rulesfile'] });
    expect(noDeps.installed.map((a) => a.name)).toEqual(['falco-rules']);
  });

  it('floating tags and no tag pick the highest release; the same artifact twice keeps the highest', async () => {
    const d = await dirs();
    const r = await install(client, d, [`${host}/acme/json:0`, `${host}/acme/json:0.7.0`]);
    expect(r.installed.map((a) => `${a.name} ${a.version} ${a.tag}`)).toEqual(['json 0.7.2 0.7.2']);
    expect(r.warnings).toContain('json was asked for twice (0.7.2 and 0.7.0); installing 0.7.2');
    const lock = await readLockfile(d.lockfile);
    expect(lock!.artifacts[0]!.requested!.sort()).toEqual([`${host}/acme/json:0`, `${host}/acme/json:0.7.0`]);

    const latest = await install(client, await dirs(), [`${host}/acme/json`]);
    expect(latest.installed[0]!.version).toBe('1.0.0');
  });

  it('explicitly asked versions must satisfy dependents', async () => {
    const err = await errorOf(install(client, await dirs(), [`${host}/acme/falco-rules:3.0.0`, `${host}/acme/json:1.0.0`]));
    expect(err.code).toBe('DEPENDENCY_CONFLICT');
    expect(err.message).toContain('the command line asks for json 1.0.0');
    const ok = await install(client, await dirs(), [`${host}/acme/falco-rules:3.0.0`, `${host}/acme/json:0.7.0`]);
    expect(ok.installed.map((a) => `${a.name} ${a.version}`)).toEqual(['falco-rules 3.0.0', 'json 0.7.0']);
  });

  it('resolves short names and dependencies through indexes before sibling repositories', async () => {
    // A second copy of json lives elsewhere; the index points there, so the dependency comes from it.
    await pushPlugin(client, host, 'mirror/plugins/json', 'json', '0.7.1');
    const indexes: LoadedIndex[] = [
      {
        name: 'test',
        url: 'file:///dev/null',
        entries: [
          { name: 'falco-rules', type: 'rulesfile', registry: host, repository: 'acme/falco-rules', description: 'd', keywords: [] },
          { name: 'json', type: 'plugin', registry: host, repository: 'mirror/plugins/json', description: 'd', keywords: [] },
        ],
      },
    ];
    const d = await dirs();
    const r = await install(client, d, ['falco-rules:3'], { indexes });
    expect(r.installed.map((a) => `${a.name} ${a.version} ${a.repository}`)).toEqual(['falco-rules 3.0.0 acme/falco-rules', 'json 0.7.1 mirror/plugins/json']);
    const lock = await readLockfile(d.lockfile);
    expect(lock!.artifacts.find((a) => a.name === 'falco-rules')).toMatchObject({ requested: ['falco-rules:3'], index: 'test' });
    expect(lock!.artifacts.find((a) => a.name === 'json')).toMatchObject({ index: 'test' });
    const err = await errorOf(install(client, d, ['nope'], { indexes }));
    expect(err.code).toBe('ARTIFACT_NOT_FOUND');
  });

  it('re-installing an unchanged artifact downloads nothing', async () => {
    const d = await dirs();
    await install(client, d, [`${host}/acme/falco-rules:3.0.0`]);
    const lockBefore = await readFile(d.lockfile, 'utf8');
    requests.reset();
    const again = await install(client, d, [`${host}/acme/falco-rules:3.0.0`]);
    const gets = requests.requests.filter((r) => r.method === 'GET');
    // One manifest by tag per artifact and the dependency's tag list; no blob, no manifest by digest.
    expect(gets).toHaveLength(3);
    expect(again.downloaded).toEqual({ blobs: 0, bytes: 0 });
    expect(again.installed.every((a) => a.placed.length === 0)).toBe(true);
    expect(await readFile(d.lockfile, 'utf8')).toBe(lockBefore);
  });

  it('--frozen installs the locked digest after the tag moved, and needs the ref in the lock', async () => {
    const ref = `${host}/acme/moving:stable`;
    await pushRules(client, ref, '1.0.0', { name: 'moving', content: 'v1\n', fileName: 'moving.yaml' });
    const first = await dirs();
    await install(client, first, [ref]);
    const committed = await readFile(first.lockfile, 'utf8');
    expect(committed).toContain('version: 1.0.0');
    await pushRules(client, ref, '2.0.0', { name: 'moving', content: 'v2\n', fileName: 'moving.yaml' });

    // A fresh node without --frozen gets v2 ...
    const fresh = await dirs();
    await install(client, fresh, [ref]);
    expect(await readFile(join(fresh.rules, 'moving.yaml'), 'utf8')).toBe('v2\n');
    // ... and with the committed lock and --frozen, v1's bytes, pulled by digest.
    const node = await dirs();
    await seed(node.rules, 'diginfractl.lock', committed);
    const frozen = await install(client, node, [ref], { frozen: true });
    expect(frozen.installed.map((a) => `${a.name} ${a.version} ${a.tag}`)).toEqual(['moving 1.0.0 stable']);
    expect(await readFile(join(node.rules, 'moving.yaml'), 'utf8')).toBe('v1\n');

    const missing = await errorOf(install(client, node, [`${host}/acme/moving:other`], { frozen: true }));
    expect(missing.code).toBe('LOCKFILE_MISMATCH');
    expect(missing.message).toContain(`${host}/acme/moving:other`);
    const noLock = await errorOf(install(client, await dirs(), [ref], { frozen: true }));
    expect(noLock.code).toBe('LOCKFILE_MISMATCH');
  });
});

describe('atomicity', () => {
  it('a blob missing after the first file leaves both directories unchanged', async () => {
    // A rules file, then a plugin whose second layer is gone from the registry's storage.
    await pushRules(client, `${host}/acme/good-rules:1.0.0`, '1.0.0', { name: 'good-rules', content: '- list: good\n  items: []\n', fileName: 'good_rules.yaml' });
    const a = await tempFile('liba.so', fakePlugin('two', '1.0.0', 'a'));
    const b = await tempFile('libb.so', fakePlugin('two', '1.0.0', 'b'));
    await push(client, `${host}/acme/two:1.0.0`, { type: 'plugin', version: '1.0.0', name: 'two', files: [a, b] });
    const resolved = await client.fetchManifest({ registry: host, repository: 'acme/two', tag: '1.0.0' });
    const layers = (resolved.json as { layers: { digest: string }[] }).layers;
    expect(layers).toHaveLength(2);
    await rm(blobPath(reg, layers[1]!.digest));

    const d = await dirs();
    await seed(d.rules, 'good_rules.yaml', 'the old good rules\n');
    await seed(d.rules, 'diginfractl.lock', 'version: 1\nartifacts: []\n');
    await seed(d.plugins, 'liba.so', 'old a\n');
    const before = { rules: await snapshot(d.rules), plugins: await snapshot(d.plugins) };
    const err = await errorOf(install(client, d, [`${host}/acme/good-rules:1.0.0`, `${host}/acme/two:1.0.0`]));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain(layers[1]!.digest);
    expect({ rules: await snapshot(d.rules), plugins: await snapshot(d.plugins) }).toEqual(before);
  });

  it('two installs into the same dirs at once do not corrupt each other', async () => {
    const d = await dirs();
    const refs = [`${host}/acme/falco-rules:3.0.0`];
    const results = await Promise.allSettled([install(client, d, refs), install(client, d, refs), install(client, d, [`${host}/acme/good-rules:1.0.0`])]);
    for (const r of results) expect(r.status).toBe('fulfilled');
    expect(await readFile(join(d.rules, 'falco_rules.yaml'))).toEqual(rulesBytes);
    expect(await readFile(join(d.plugins, 'libjson.so'))).toEqual(fakePlugin('json', '0.7.2', 'linux/amd64'));
    expect((await readdir(d.rules)).sort()).toEqual(['diginfractl.lock', 'falco_rules.yaml', 'good_rules.yaml']);
    const lock = await readLockfile(d.lockfile);
    expect(lock!.artifacts.map((a) => a.name).sort()).toEqual(['falco-rules', 'good-rules', 'json']);
  });

  it("a failure placing the second artifact's files leaves both directories and the lock file as they were", async () => {
    // v1: a rules file (two files) and a plugin; v2 of both: new bytes, and the plugin gains a file.
    const r1 = await tempFile('atom.yaml', 'atom v1\n');
    const r1b = await tempFile('atom_extra.yaml', 'extra v1\n');
    const r2 = await tempFile('atom.yaml', 'atom v2\n');
    await push(client, `${host}/acme/atom-rules:1.0.0`, { type: 'rulesfile', version: '1.0.0', name: 'atom-rules', files: [r1, r1b] });
    await push(client, `${host}/acme/atom-rules:2.0.0`, { type: 'rulesfile', version: '2.0.0', name: 'atom-rules', files: [r2] });
    await push(client, `${host}/acme/atom-plug:1.0.0`, { type: 'plugin', version: '1.0.0', name: 'atom-plug', files: [await tempFile('libatom.so', fakePlugin('atom', '1.0.0', 'any'))] });
    await push(client, `${host}/acme/atom-plug:2.0.0`, {
      type: 'plugin',
      version: '2.0.0',
      name: 'atom-plug',
      files: [await tempFile('libatom.so', fakePlugin('atom', '2.0.0', 'any')), await tempFile('libatom2.so', fakePlugin('atom2', '2.0.0', 'any'))],
    });
    const d = await dirs();
    const v1 = await install(client, d, [`${host}/acme/atom-rules:1.0.0`, `${host}/acme/atom-plug:1.0.0`]);
    expect(v1.installed.map((a) => a.name)).toEqual(['atom-rules', 'atom-plug']);
    // The plugin (committed second) cannot place libatom2.so: a non-empty directory holds its name.
    await seed(join(d.plugins, 'libatom2.so'), 'inner', 'not a plugin\n');
    const lockBefore = await readFile(d.lockfile, 'utf8');
    const inode = (await stat(join(d.rules, 'atom.yaml'))).ino;
    const before = { rules: await snapshot(d.rules), plugins: await snapshot(d.plugins) };

    const err = await errorOf(install(client, d, [`${host}/acme/atom-rules:2.0.0`, `${host}/acme/atom-plug:2.0.0`]));
    expect(err.code).toBe('IO');
    expect(err.message).toContain(join(d.plugins, 'libatom2.so'));
    expect(err.hint).toContain('nothing was changed');
    // The rules file (placed first) is back, the same inode; the stale file is still there; no leftovers.
    expect({ rules: await snapshot(d.rules), plugins: await snapshot(d.plugins) }).toEqual(before);
    expect(await readFile(join(d.rules, 'atom.yaml'), 'utf8')).toBe('atom v1\n');
    expect((await stat(join(d.rules, 'atom.yaml'))).ino).toBe(inode);
    expect(await readFile(d.lockfile, 'utf8')).toBe(lockBefore);

    // With the obstacle gone, the same install goes through.
    await rm(join(d.plugins, 'libatom2.so'), { recursive: true });
    const v2 = await install(client, d, [`${host}/acme/atom-rules:2.0.0`, `${host}/acme/atom-plug:2.0.0`]);
    expect(v2.removed).toEqual([join(d.rules, 'atom_extra.yaml')]);
    expect((await readdir(d.rules)).sort()).toEqual(['atom.yaml', 'diginfractl.lock']);
    expect((await readdir(d.plugins)).sort()).toEqual(['libatom.so', 'libatom2.so']);
  });

  it("refuses to overwrite a file that another installed artifact (per the lock file) owns, naming both", async () => {
    await pushRules(client, `${host}/acme/first-rules:1.0.0`, '1.0.0', { name: 'first-rules', content: 'first\n', fileName: 'shared.yaml' });
    await pushRules(client, `${host}/acme/second-rules:1.0.0`, '1.0.0', { name: 'second-rules', content: 'second\n', fileName: 'shared.yaml' });
    const d = await dirs();
    await install(client, d, [`${host}/acme/first-rules:1.0.0`]);
    const lockBefore = await readFile(d.lockfile, 'utf8');
    const before = await snapshot(d.rules);
    const err = await errorOf(install(client, d, [`${host}/acme/second-rules:1.0.0`]));
    expect(err.code).toBe('ARTIFACT_INVALID');
    expect(err.message).toContain('second-rules 1.0.0');
    expect(err.message).toContain('first-rules 1.0.0');
    expect(err.message).toContain(join(d.rules, 'shared.yaml'));
    expect(err.hint).toContain('nothing was written');
    expect(await snapshot(d.rules)).toEqual(before);
    expect(await readFile(join(d.rules, 'shared.yaml'), 'utf8')).toBe('first\n');
    expect(await readFile(d.lockfile, 'utf8')).toBe(lockBefore);
    // Into another directory it is fine; and re-installing the owner itself is an upgrade, not a collision.
    const other = await dirs();
    await install(client, { ...d, rules: other.rules }, [`${host}/acme/second-rules:1.0.0`]);
    expect(await readFile(join(other.rules, 'shared.yaml'), 'utf8')).toBe('second\n');
    expect((await install(client, d, [`${host}/acme/first-rules:1.0.0`])).installed.map((a) => a.name)).toEqual(['first-rules']);
  });

  it('removes staging dirs and unfinished downloads that a crashed install left, once they are old', async () => {
    const d = await dirs();
    const hour = new Date(Date.now() - 60 * 60 * 1000);
    const leftovers: string[] = [];
    for (const dir of [d.rules, d.plugins]) {
      const old = join(dir, '.diginfractl-staging-crash1');
      await seed(old, 'half.yaml', 'half');
      await utimes(old, hour, hour);
      leftovers.push(old);
    }
    const young = join(d.rules, '.diginfractl-staging-running');
    await seed(young, 'x.yaml', 'x');
    const blobs = join(d.cache, 'blobs', 'sha256');
    const partial = join(blobs, `.${'a'.repeat(64)}.partial-123-abc`);
    const putTmp = join(blobs, `${'b'.repeat(64)}.123.xyz.tmp`);
    await seed(blobs, basename(partial), 'part');
    await seed(blobs, basename(putTmp), 'part');
    for (const f of [partial, putTmp]) await utimes(f, hour, hour);
    const freshPartial = join(blobs, `.${'c'.repeat(64)}.partial-124-abc`);
    await seed(blobs, basename(freshPartial), 'downloading');

    await install(client, d, [`${host}/acme/json:0.7.2`]);
    for (const p of [...leftovers, partial, putTmp]) expect(await exists(p)).toBe(false);
    for (const p of [young, freshPartial]) expect(await exists(p)).toBe(true);
  });

  it('deletes files that the previous version shipped and the new one does not', async () => {
    const one = await tempFile('one.yaml', 'one\n');
    const two = await tempFile('two.yaml', 'two\n');
    await push(client, `${host}/acme/split:1.0.0`, { type: 'rulesfile', version: '1.0.0', name: 'split', files: [one, two] });
    await push(client, `${host}/acme/split:2.0.0`, { type: 'rulesfile', version: '2.0.0', name: 'split', files: [one] });
    const d = await dirs();
    await seed(d.rules, 'mine.yaml', 'not managed\n');
    const v1 = await install(client, d, [`${host}/acme/split:1.0.0`]);
    expect(v1.installed[0]!.files.map((f) => f.slice(d.rules.length + 1))).toEqual(['one.yaml', 'two.yaml']);
    const v2 = await install(client, d, [`${host}/acme/split:2.0.0`]);
    expect(v2.removed).toEqual([join(d.rules, 'two.yaml')]);
    expect((await readdir(d.rules)).sort()).toEqual(['diginfractl.lock', 'mine.yaml', 'one.yaml']);
  });
});

describe('blob cache', () => {
  it('a --frozen re-install of cached artifacts makes no request: it works with the registry down', async () => {
    const own = await startRegistry();
    const c = clientFor(own);
    try {
      await pushPlugin(c, own.host, 'x/json', 'json', '0.7.0');
      await pushRules(c, `${own.host}/x/rules:1.0.0`, '1.0.0', { name: 'rules', content: 'r\n', fileName: 'r.yaml', dependencies: [{ name: 'json', version: '0.7.0' }] });
      const d = await dirs();
      const ref = `${own.host}/x/rules:1.0.0`;
      await install(c, d, [ref], { platform: ARM64 });
      const cached = await readdir(join(d.cache, 'blobs', 'sha256'));
      // 2 layers, 2 configs, the rules manifest, the plugin's index and its arm64 manifest.
      expect(cached).toHaveLength(7);
      await rm(join(d.plugins, 'libjson.so'));
      await own.stop();

      const again = await install(c, d, [ref], { platform: ARM64, frozen: true });
      expect(again.downloaded.blobs).toBe(0);
      expect(await readFile(join(d.plugins, 'libjson.so'))).toEqual(fakePlugin('json', '0.7.0', 'linux/arm64'));
      expect(again.installed.find((a) => a.name === 'json')!.placed).toEqual([join(d.plugins, 'libjson.so')]);
      // Without --frozen the tag must be asked for, and the registry is gone.
      expect((await errorOf(install(c, d, [ref], { platform: ARM64 }))).code).toBe('NETWORK');
    } finally {
      await c.close();
      await own.stop();
    }
  });
});
