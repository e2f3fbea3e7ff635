/**
 * A followed rules file whose new version needs a plugin this node does not have is refused before the
 * swap (the engine would refuse the rules and keep its old ones without a word), and installed at the
 * first check after `artifact install` puts the plugin in place. The version rule is install's.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeUnmet, signatureOf, unmetDependencies } from '../../src/follow/dependencies.js';
import { INSTALL_LOCKFILE_NAME } from '../../src/follow/settings.js';
import { LOCKFILE_NAME } from '../../src/install/lockfile.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushRules, RULES_FIXTURE } from '../helpers/push.js';

describe('dependency check (pure)', () => {
  const k8saudit = { name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] };

  it("uses install's rule (same major, not older; 0.x too), and any alternative satisfies", () => {
    const have = (name: string, version: string) => [{ name, version, type: 'plugin' }];
    expect(unmetDependencies([k8saudit], have('k8saudit', '0.7.3'))).toEqual([]);
    expect(unmetDependencies([k8saudit], have('k8saudit', '0.8.0'))).toEqual([]);
    expect(unmetDependencies([k8saudit], have('k8saudit', '1.0.0'))).toEqual([k8saudit]);
    expect(unmetDependencies([k8saudit], have('k8saudit', '0.6.9'))).toEqual([k8saudit]);
    expect(unmetDependencies([k8saudit], have('k8saudit-eks', '0.2.1'))).toEqual([]);
    expect(unmetDependencies([{ name: 'json', version: '1.2.0' }], have('json', '1.9.0'))).toEqual([]);
    expect(unmetDependencies([{ name: 'json', version: '1.2.0' }], have('json', '2.0.0'))).toHaveLength(1);
    expect(unmetDependencies([k8saudit], [])).toEqual([k8saudit]);
  });

  it('names what is wanted and what is there', () => {
    expect(describeUnmet([k8saudit], [{ name: 'k8saudit', version: '0.6.1', type: 'plugin' }, { name: 'json', version: '0.7.0', type: 'plugin' }])).toBe(
      'k8saudit >=0.7.0 <1.0.0 or k8saudit-eks >=0.2.0 <1.0.0 (installed: k8saudit 0.6.1)',
    );
    expect(describeUnmet([{ name: 'json', version: '1.0.0' }], [])).toBe('json >=1.0.0 <2.0.0 (installed: none)');
  });

  it('signs the installed set whatever its order', () => {
    const a = { name: 'a', version: '1.0.0', type: 'plugin' };
    const b = { name: 'b', version: '2.0.0', type: 'rulesfile' };
    expect(signatureOf([a, b])).toBe(signatureOf([b, a]));
    expect(signatureOf([a])).not.toBe(signatureOf([a, b]));
  });

  it("follow looks for install's lock file under install's own name", () => {
    expect(INSTALL_LOCKFILE_NAME).toBe(LOCKFILE_NAME);
  });
});

describe('artifact follow: dependencies (built CLI, real registry)', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let root: string;

  beforeAll(async () => {
    reg = await startRegistry();
    env = await cliEnv();
    root = await tempDir();
    // Two versions of a plugin, pushed as a user would.
    const src = join(root, 'src');
    await mkdir(src, { recursive: true });
    for (const v of ['0.1.0', '0.2.0']) {
      const so = join(src, v, 'libk8saudit.so');
      await mkdir(join(src, v), { recursive: true });
      await writeFile(so, `\x7fELF k8saudit ${v}\n`, { mode: 0o755 });
      const push = await runCli(['repo', 'push', `${reg.host}/plugins/k8saudit`, so, '--type', 'plugin', '--version', v, '--plain-http'], { env });
      expect(push.stderr).toBe('');
    }
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('refuses a version whose plugin is not installed, keeps the old one, and installs it once the plugin is', async () => {
    const client = pushClient();
    const ref = `${reg.host}/rules/k8saudit-rules:stable`;
    const v1 = await readFile(RULES_FIXTURE);
    const v2 = Buffer.concat([v1, Buffer.from('\n- list: needs_k8saudit_020\n  items: []\n')]);
    await pushRules(client, ref, '1.0.0', { content: v1, fileName: 'k8saudit_rules.yaml', dependencies: [{ name: 'k8saudit', version: '0.1.0' }] });
    const rules = join(root, 'node/rules');
    const plugins = join(root, 'node/plugins');
    const install = (tag: string) =>
      runCli(['artifact', 'install', `${reg.host}/plugins/k8saudit:${tag}`, '--rulesfiles-dir', rules, '--plugins-dir', plugins, '--plain-http'], { env });
    const follow = (...extra: string[]) =>
      runCli(['artifact', 'follow', ref, '--once', '--rulesfiles-dir', rules, '--plugins-dir', plugins, '--state-dir', join(root, 'node/state'), '--plain-http', ...extra], { env });

    // The node has k8saudit 0.1.0 (installed by `artifact install`, which writes the lock file in the rules dir).
    expect((await install('0.1.0')).code).toBe(0);
    const first = await follow();
    expect(first.stderr).not.toContain('error:');
    expect(first.stdout).toContain(`${ref}: updated 1.0.0`);
    expect(first.code).toBe(0);

    // 2.0.0 needs k8saudit 0.2.x (or the EKS build): refused, 1.0.0 stays, exit 1 with the reason.
    await pushRules(client, ref, '2.0.0', {
      content: v2,
      fileName: 'k8saudit_rules.yaml',
      dependencies: [{ name: 'k8saudit', version: '0.2.0', alternatives: [{ name: 'k8saudit-eks', version: '0.1.0' }] }],
    });
    const refused = await follow('-o', 'json');
    expect(refused.code).toBe(1);
    const [outcome] = JSON.parse(refused.stdout) as { result: string; reason: string; message: string; version: string }[];
    expect(outcome).toMatchObject({ result: 'rejected', reason: 'dependencies', version: '2.0.0' });
    expect(outcome!.message).toContain('needs k8saudit >=0.2.0 <1.0.0 or k8saudit-eks >=0.1.0 <1.0.0 (installed: k8saudit 0.1.0)');
    expect(outcome!.message).toContain('diginfractl artifact install k8saudit:0.2.0');
    expect(await readFile(join(rules, 'k8saudit_rules.yaml'))).toEqual(v1);
    // Nothing changed on the node: still refused, from the state.
    const still = await follow();
    expect(still.code).toBe(1);
    expect(still.stdout).toContain('rejected (dependencies)');

    // The plugin arrives: the next check installs 2.0.0.
    expect((await install('0.2.0')).code).toBe(0);
    const now = await follow();
    expect(now.stderr).not.toContain('error:');
    expect(now.stdout).toContain(`${ref}: updated 2.0.0`);
    expect(now.code).toBe(0);
    expect(await readFile(join(rules, 'k8saudit_rules.yaml'))).toEqual(v2);
  }, 60_000);

  it('without a lock file it cannot tell: it installs, with a warning', async () => {
    const client = pushClient();
    const ref = `${reg.host}/rules/nolock-rules:stable`;
    const v1 = await readFile(RULES_FIXTURE);
    await pushRules(client, ref, '1.0.0', { content: v1, fileName: 'nolock_rules.yaml', dependencies: [{ name: 'k8saudit', version: '0.2.0' }] });
    const rules = join(root, 'nolock/rules');
    const r = await runCli(['artifact', 'follow', ref, '--once', '--rulesfiles-dir', rules, '--state-dir', join(root, 'nolock/state'), '--plain-http'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('cannot check that');
    expect(r.stderr).toContain(`no lock file at ${join(rules, 'diginfractl.lock')}`);
    expect(await readdir(rules)).toContain('nolock_rules.yaml');
  });
});
