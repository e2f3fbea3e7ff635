/**
 * `REGISTRY/REPO:TAG@DIGEST`, the form `repo push` and `artifact install` print, is taken back by
 * every command (the built CLI, the real registry): the digest decides what is fetched, the tag is
 * shown. A digest that is not the tag's current one still wins.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliEnv, requireCli, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
let env: NodeJS.ProcessEnv & { HOME: string };
let printed: string;
let digest: string;

beforeAll(async () => {
  requireCli('repo', ['push', 'pull']);
  reg = await startRegistry();
  env = await cliEnv();
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [reg.host] } }));
  const src = await mkdtemp(join(tmpdir(), 'diginfractl-forms-'));
  for (const v of ['1.0.0', '1.1.0']) {
    await writeFile(join(src, 'forms_rules.yaml'), `- list: forms_${v.replace(/\./g, '_')}\n  items: []\n`);
    const push = await runCli(['repo', 'push', `${reg.host}/rules/forms:stable`, join(src, 'forms_rules.yaml'), '--type', 'rulesfile', '--version', v], { env });
    expect(push.stderr).toBe('');
    // The first push's printed reference: `stable` has moved on since, its digest has not.
    printed ??= /^pushed (\S+)$/m.exec(push.stdout)![1]!;
  }
  digest = printed.slice(printed.indexOf('@') + 1);
  expect(printed).toBe(`${reg.host}/rules/forms:stable@${digest}`);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
});

describe('REGISTRY/REPO:TAG@DIGEST', () => {
  it('repo pull fetches the digest (not what the tag points at now)', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'diginfractl-forms-pull-'));
    const r = await runCli(['repo', 'pull', printed, '--dest', dest], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`pulled ${printed} (rulesfile forms 1.0.0)`);
    expect(await readFile(join(dest, 'forms_rules.yaml'), 'utf8')).toContain('forms_1_0_0');
  });

  it('artifact info shows the tag and the digest, version of the digest', async () => {
    const r = await runCli(['artifact', 'info', printed, '-o', 'json'], { env });
    expect(r.stderr).toBe('');
    const [info] = JSON.parse(r.stdout) as { tag: string; digest: string; version: string }[];
    expect(info).toMatchObject({ tag: 'stable', digest, version: '1.0.0' });
  });

  it('artifact manifest prints the manifest of the digest', async () => {
    const r = await runCli(['artifact', 'manifest', printed], { env });
    expect(r.code).toBe(0);
    const { createHash } = await import('node:crypto');
    expect(`sha256:${createHash('sha256').update(r.stdout).digest('hex')}`).toBe(digest);
  });

  it('artifact install installs the digest and records the reference as given', async () => {
    const rules = join(env.HOME, 'rules');
    const r = await runCli(['artifact', 'install', printed, '--rulesfiles-dir', rules, '-o', 'json'], { env });
    expect(r.stderr).not.toContain('error:');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { installed: { version: string; digest: string; requested: string[] }[] };
    expect(out.installed[0]).toMatchObject({ version: '1.0.0', digest, requested: [printed] });
    expect(await readFile(join(rules, 'forms_rules.yaml'), 'utf8')).toContain('forms_1_0_0');
  });
});
