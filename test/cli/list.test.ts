/**
 * `artifact list`: what install and follow placed on this node, read from the lock file and the
 * follow state dir, with the files no longer in place and what follow last refused (built CLI,
 * artifacts installed from a real registry).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/follow/inventory.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushRules, RULES_FIXTURE } from '../helpers/push.js';

describe('artifact list (built CLI, real registry)', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let root: string;
  let rules: string;
  let plugins: string;
  let state: string;
  let ref: string;
  const list = (...extra: string[]) => runCli(['artifact', 'list', '--state-dir', state, ...extra], { env });

  beforeAll(async () => {
    reg = await startRegistry();
    root = await tempDir('diginfractl-list-');
    rules = join(root, 'rules');
    plugins = join(root, 'plugins');
    state = join(root, 'state');
    // The config points install and follow at this node's dirs, as the chart does.
    env = await cliEnv();
    await writeFile(
      env.DIGINFRACTL_CONFIG!,
      `install:\n  rulesfilesDir: ${rules}\n  pluginsDir: ${plugins}\nfollow:\n  rulesfilesDir: ${rules}\n  pluginsDir: ${plugins}\n  stateDir: ${state}\n`,
    );
    const so = join(root, 'src', 'libk8saudit.so');
    await mkdir(join(root, 'src'), { recursive: true });
    await writeFile(so, '\x7fELF k8saudit\n', { mode: 0o755 });
    const push = await runCli(['repo', 'push', `${reg.host}/plugins/k8saudit`, so, '--type', 'plugin', '--version', '0.1.0', '--plain-http'], { env });
    expect(push.stderr).toBe('');
    ref = `${reg.host}/rules/k8saudit-rules:stable`;
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('says where it looked when nothing is installed', async () => {
    const r = await list();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`nothing installed: no lock file entry (${join(rules, 'diginfractl.lock')} (absent)) and nothing followed (state dir ${state})\n`);
  });

  it('lists what install and follow placed, what follow refused, and the files that are gone', async () => {
    const install = await runCli(['artifact', 'install', `${reg.host}/plugins/k8saudit:0.1.0`, '--plain-http'], { env });
    expect(install.code).toBe(0);
    const client = pushClient();
    const v1 = await readFile(RULES_FIXTURE);
    await pushRules(client, ref, '1.0.0', { content: v1, fileName: 'k8saudit_rules.yaml', dependencies: [{ name: 'k8saudit', version: '0.1.0' }] });
    const follow = () => runCli(['artifact', 'follow', ref, '--once', '--plain-http'], { env });
    expect((await follow()).code).toBe(0);
    // 2.0.0 needs a plugin this node lacks: follow refuses it and keeps 1.0.0.
    await pushRules(client, ref, '2.0.0', {
      content: Buffer.concat([v1, Buffer.from('\n- list: l\n  items: []\n')]),
      fileName: 'k8saudit_rules.yaml',
      dependencies: [{ name: 'k8saudit', version: '0.2.0' }],
    });
    expect((await follow()).code).toBe(1);

    const table = await list();
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+TYPE\s+VERSION\s+SOURCE\s+STATUS\s+REF$/);
    expect(lines[1]).toMatch(new RegExp(`^k8saudit\\s+plugin\\s+0\\.1\\.0\\s+install\\s+ok\\s+${reg.host}/plugins/k8saudit:0\\.1\\.0@sha256:[0-9a-f]{12}…$`));
    expect(lines[2]).toMatch(new RegExp(`^k8saudit-rules\\s+rulesfile\\s+1\\.0\\.0\\s+follow\\s+ok; refused 2\\.0\\.0 \\(dependencies\\)\\s+${reg.host}/rules/k8saudit-rules:stable$`));
    expect(lines[3]).toMatch(/^k8saudit-rules: refused 2\.0\.0 at \S+: .*needs k8saudit >=0\.2\.0 <1\.0\.0 \(installed: k8saudit 0\.1\.0\)/);
    expect(lines).toHaveLength(4);

    // The plugin file is deleted by hand: the list says so, by path.
    await rm(join(plugins, 'libk8saudit.so'));
    const after = await list('-o', 'json');
    expect(after.code).toBe(0);
    const inv = JSON.parse(after.stdout) as Inventory;
    expect(inv.lockfiles).toEqual([{ path: join(rules, 'diginfractl.lock'), found: true }]);
    expect(inv.stateDir).toBe(state);
    const [plugin, followed] = inv.items;
    expect(plugin).toMatchObject({ source: 'install', name: 'k8saudit', type: 'plugin', version: '0.1.0', dir: plugins, requested: [`${reg.host}/plugins/k8saudit:0.1.0`] });
    expect(plugin!.files).toEqual([join(plugins, 'libk8saudit.so')]);
    expect(plugin!.missing).toEqual([join(plugins, 'libk8saudit.so')]);
    expect(plugin!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(followed).toMatchObject({ source: 'follow', name: 'k8saudit-rules', version: '1.0.0', ref, dir: rules, missing: [], rejected: { version: '2.0.0', reason: 'dependencies' } });
    expect(followed!.files).toEqual([join(rules, 'k8saudit_rules.yaml')]);
    expect(Date.parse(followed!.installedAt!)).toBeGreaterThan(Date.now() - 60_000);
    const text = await list();
    expect(text.stdout).toMatch(/k8saudit\s+plugin\s+0\.1\.0\s+install\s+1 of 1 file\(s\) missing/);
    expect(text.stdout).toContain(`k8saudit: missing ${join(plugins, 'libk8saudit.so')}\n`);
  }, 60_000);

  it("says when a file install placed now holds follow's version (the chart installs, then follows, the same ref)", async () => {
    const client = pushClient();
    const other = `${reg.host}/rules/other`;
    await pushRules(client, `${other}:1.0.0`, '1.0.0', { content: '- list: one\n  items: []\n', fileName: 'other_rules.yaml', addFloatingTags: true });
    expect((await runCli(['artifact', 'install', `${other}:1`, '--plain-http'], { env })).code).toBe(0);
    await pushRules(client, `${other}:1.1.0`, '1.1.0', { content: '- list: two\n  items: []\n', fileName: 'other_rules.yaml', addFloatingTags: true });
    expect((await runCli(['artifact', 'follow', `${other}:1`, '--once', '--plain-http'], { env })).code).toBe(0);
    const r = await list();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^other\s+rulesfile\s+1\.0\.0\s+install\s+ok; now follow's 1\.1\.0\s/m);
    expect(r.stdout).toMatch(/^other\s+rulesfile\s+1\.1\.0\s+follow\s+ok\s/m);
    expect(r.stdout).toContain(`other: ${join(rules, 'other_rules.yaml')} now hold(s) 1.1.0 of ${other}:1 (artifact follow)\n`);
    const json = JSON.parse((await list('-o', 'json')).stdout) as Inventory;
    expect(json.items.find((i) => i.source === 'install' && i.name === 'other')!.replacedBy).toEqual({ ref: `${other}:1`, version: '1.1.0', files: [join(rules, 'other_rules.yaml')] });
  }, 60_000);

  it('a state dir it cannot read is an error, not "nothing followed"', async () => {
    const locked = join(root, 'locked-state');
    await mkdir(join(locked, 'follow'), { recursive: true });
    await writeFile(join(locked, 'follow', 'x'), '');
    // A file where the follow dir should be: readdir fails with ENOTDIR (a permission error does the same; root bypasses those).
    await rm(join(locked, 'follow'), { recursive: true });
    await writeFile(join(locked, 'follow'), 'not a directory');
    const r = await runCli(['artifact', 'list', '--state-dir', locked], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read the follow state dir ${join(locked, 'follow')}`);
  });

  it('a broken lock file is an error that names it; --lockfile reads another one', async () => {
    const bad = join(root, 'bad.lock');
    await writeFile(bad, 'version: 7\nartifacts: []\n');
    const r = await list('--lockfile', bad);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`lock file ${bad} is not valid: version 7 is not 1`);
    const other = await list('--lockfile', join(root, 'none.lock'), '-o', 'json');
    expect(other.code).toBe(0);
    const inv = JSON.parse(other.stdout) as Inventory;
    expect(inv.lockfiles).toEqual([{ path: join(root, 'none.lock'), found: false }]);
    // Only the followed refs (two, from the tests above): no lock file entry.
    expect(inv.items.map((i) => [i.source, i.name])).toEqual([['follow', 'k8saudit-rules'], ['follow', 'other']]);
  });
});
