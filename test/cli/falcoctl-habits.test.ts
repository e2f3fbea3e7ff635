/**
 * falcoctl's commands and flags that users type from habit, as aliases (docs/falcoctl.md), with the
 * built CLI against the real registry: `registry push|pull|auth basic`, `--dest-dir`, `-t/--tag`,
 * `index add NAME URL BACKEND`, `--assets-dir`, `artifact follow --tmp-dir --timeout --falco-versions`,
 * `artifact search --min-score`.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliEnv, requireCli, ROOT, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { writeIndexFile } from './index-file.js';
import { jsonErrorIn } from './json-error.js';

let reg: TestRegistry;
let env: NodeJS.ProcessEnv & { HOME: string };
let dir: string;
let indexUrl: string;
let versions: Server;

beforeAll(async () => {
  requireCli('repo', ['push', 'pull']);
  reg = await startRegistry();
  env = await cliEnv();
  dir = await mkdtemp(join(tmpdir(), 'diginfractl-habits-'));
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [reg.host] } }));
  indexUrl = await writeIndexFile(dir, 'index.yaml', [
    { name: 'k8saudit', type: 'plugin', registry: reg.host, repository: 'plugins/k8saudit', description: 'Kubernetes audit events', keywords: ['audit'] },
    { name: 'habit-rules', type: 'rulesfile', registry: reg.host, repository: 'rules/habit', description: 'Rules pushed the falcoctl way', keywords: ['habit'] },
  ]);
  // A versions endpoint as the engine serves it, for --falco-versions.
  versions = createServer((_req, res) => res.end(JSON.stringify({ engine_version: '0.40.0' })));
  await new Promise<void>((resolve) => versions.listen(0, '127.0.0.1', resolve));
}, 60_000);

afterAll(async () => {
  versions?.close();
  await reg?.stop();
});

describe("falcoctl's habits", () => {
  it('docs/falcoctl.md has one table, and each alias it lists is in the help of its command', async () => {
    const doc = await readFile(join(ROOT, 'docs/falcoctl.md'), 'utf8');
    expect(doc.match(/^\| falcoctl \| diginfractl \| notes \|$/gm)).toHaveLength(1);
    // [command, what its help shows, what the table names]
    const aliases: [string[], string, string][] = [
      [['registry', 'push'], '-t, --tag <tag>', '`-t`, `--tag TAG`'],
      [['registry', 'push'], '-d, --depends-on', '`-d`, `--depends-on`'],
      [['registry', 'push'], '-r, --requires', '`-r`, `--requires`'],
      [['registry', 'pull'], '--dest-dir <dir>', '`--dest-dir DIR`'],
      [['artifact', 'install'], '--assets-dir <dir>', '`--assets-dir DIR`'],
      [['artifact', 'follow'], '--assets-dir <dir>', '`--assets-dir` = `--dir asset=DIR`'],
      [['artifact', 'follow'], '--tmp-dir <dir>', '`--tmp-dir DIR`'],
      [['artifact', 'follow'], '--timeout <duration>', '`--timeout D`'],
      [['artifact', 'follow'], '--falco-versions <url>', '`--falco-versions URL`'],
      [['artifact', 'search'], '--min-score <score>', '`--min-score S`'],
      [['index', 'add'], '[backend]', '`index add NAME URL [BACKEND]`'],
      [['--help'], '--log-format <format>', '`--log-format text\\|json`'],
      [['registry', 'auth', 'basic'], '--password-stdin', '`registry auth basic HOST`'],
      [['completion', '--help'], 'zsh', '`completion bash\\|zsh\\|fish`'],
    ];
    for (const [cmd, flag, row] of aliases) {
      const help = await runCli(cmd[0] === '--help' || cmd.at(-1) === '--help' ? cmd : [...cmd, '--help'], { env });
      expect(help.stdout, `${cmd.join(' ')} --help`).toContain(flag);
      expect(doc, `docs/falcoctl.md names ${row}`).toContain(row);
    }
  });

  it('index add NAME URL BACKEND: the backend must agree with the URL, whose scheme decides', async () => {
    const wrong = await runCli(['index', 'add', 'local', indexUrl, 'https'], { env });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain(`error: index backend "https" does not match ${indexUrl}: the URL's scheme decides the backend`);
    const unknown = await runCli(['index', 'add', 'local', indexUrl, 'ftp'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('index backend "ftp" is not one of https, http, gcs, s3, file');
    const ok = await runCli(['index', 'add', 'local', indexUrl, 'file'], { env });
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe(`index "local" added: 2 entries from ${indexUrl}\n`);
  });

  it('registry push with -t/--tag, -d and -r; registry pull --dest-dir; -o stays the output format', async () => {
    const rules = join(dir, 'habit_rules.yaml');
    await writeFile(rules, '- list: habit\n  items: []\n');
    const push = await runCli(
      ['registry', 'push', `${reg.host}/rules/habit:1.0.0`, rules, '--type', 'rulesfile', '--version', '1.0.0', '-t', 'stable', '--tag', 'prod', '-d', 'k8saudit:0.7.0', '-r', 'engine_version:0.50.0', '-o', 'json'],
      { env },
    );
    expect(push.code, push.stderr).toBe(0);
    const pushed = JSON.parse(push.stdout) as { digest: string; tags: string[] };
    expect(pushed.tags).toEqual(['1.0.0', 'stable', 'prod']);
    for (const tag of ['stable', 'prod']) {
      const [info] = JSON.parse((await runCli(['artifact', 'info', `${reg.host}/rules/habit:${tag}`, '-o', 'json'], { env })).stdout) as { digest: string; dependencies: unknown; requirements: unknown }[];
      expect(info).toMatchObject({ digest: pushed.digest, dependencies: [{ name: 'k8saudit', version: '0.7.0' }], requirements: [{ name: 'engine_version', version: '0.50.0' }] });
    }
    const badTag = await runCli(['registry', 'push', `${reg.host}/rules/habit:1.0.1`, rules, '--type', 'rulesfile', '--version', '1.0.1', '-t', '-bad'], { env });
    expect(badTag.code).toBe(2);
    expect((await runCli(['artifact', 'info', `${reg.host}/rules/habit:1.0.1`], { env })).code).toBe(1); // nothing pushed

    const dest = join(dir, 'pulled');
    const pull = await runCli(['registry', 'pull', `${reg.host}/rules/habit:stable`, '--dest-dir', dest], { env });
    expect(pull.code, pull.stderr).toBe(0);
    expect(await readdir(dest)).toEqual(['habit_rules.yaml']);
    const both = await runCli(['repo', 'pull', `${reg.host}/rules/habit:stable`, '--dest-dir', dest, '--dest', join(dir, 'other')], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give --dest or --dest-dir, not both');
    // falcoctl's `-o DIR`: here -o is the output format, and says so.
    const dashO = await runCli(['registry', 'pull', `${reg.host}/rules/habit:stable`, '-o', dest], { env });
    expect(dashO.code).toBe(2);
    expect(dashO.stderr).toContain(`-o "${dest}" is not one of table, json`);
  });

  it('registry auth basic is repo login; auth oauth and gcp point at the config keys', async () => {
    const auth = await startRegistry({ auth: 'htpasswd' });
    try {
      const login = await runCli(['registry', 'auth', 'basic', auth.host, '-u', auth.username!, '--password-stdin', '--plain-http', '-o', 'json'], { env, input: `${auth.password}\n` });
      expect(login.code, login.stderr).toBe(0);
      expect(JSON.parse(login.stdout)).toMatchObject({ registry: auth.host, username: auth.username, verified: true });
      const wrong = await runCli(['registry', 'auth', 'basic', auth.host, '-u', auth.username!, '--password-stdin', '--plain-http', '-o', 'json'], { env, input: 'wrong\n' });
      expect(wrong.code).toBe(1);
      expect(jsonErrorIn(wrong.stderr).code).toBe('AUTH_REQUIRED');
    } finally {
      await auth.stop();
    }
    const oauth = await runCli(['registry', 'auth', 'oauth', 'ghcr.io', '--token-url', 'https://x/token', '--client-id', 'a', '--client-secret', 'b', '-o', 'json'], { env });
    expect(oauth.code).toBe(2);
    expect(jsonErrorIn(oauth.stderr)).toMatchObject({ code: 'USAGE', message: expect.stringContaining('registry.auth.oauth'), hint: expect.stringContaining('DIGINFRACTL_REGISTRY_AUTH_OAUTH') });
    const gcp = await runCli(['registry', 'auth', 'gcp', 'europe-docker.pkg.dev'], { env });
    expect(gcp.code).toBe(2);
    expect(gcp.stderr).toContain('registry.auth.gcp');
  });

  it('artifact install --assets-dir DIR puts assets there (the same as --dir asset=DIR)', async () => {
    const data = join(dir, 'geo.mmdb');
    await writeFile(data, 'not really a database');
    expect((await runCli(['repo', 'push', `${reg.host}/assets/geo:1.0.0`, data, '--type', 'asset', '--version', '1.0.0'], { env })).code).toBe(0);
    const assets = join(dir, 'assets');
    const r = await runCli(['artifact', 'install', `${reg.host}/assets/geo:1.0.0`, '--assets-dir', assets, '--rulesfiles-dir', join(dir, 'rules')], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(assets, 'geo.mmdb'), 'utf8')).toBe('not really a database');
    const both = await runCli(['artifact', 'install', `${reg.host}/assets/geo:1.0.0`, '--assets-dir', assets, '--dir', `asset=${assets}`], { env });
    expect(both.code).toBe(2);
  });

  it('artifact follow --falco-versions is --engine-versions-url; --tmp-dir and --timeout are accepted and say they are not used', async () => {
    const url = `http://127.0.0.1:${(versions.address() as AddressInfo).port}/versions`;
    const follow = await runCli(
      ['artifact', 'follow', `${reg.host}/rules/habit:stable`, '--once', '--falco-versions', url, '--tmp-dir', '/tmp/falcoctl', '--timeout', '2m', '--rulesfiles-dir', join(dir, 'followed'), '--state-dir', join(dir, 'state'), '--log-format', 'text'],
      { env },
    );
    // The rules need engine 0.50.0; the versions endpoint says 0.40.0: refused, so the URL was read.
    expect(follow.code).toBe(1);
    expect(follow.stdout).toContain('rejected (requirements)');
    expect(follow.stderr).toContain('warn: --tmp-dir /tmp/falcoctl is not used');
    expect(follow.stderr).toContain('warn: --timeout 2m is not used');
    const badTimeout = await runCli(['artifact', 'follow', `${reg.host}/rules/habit:stable`, '--once', '--timeout', 'soon'], { env });
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toContain('--timeout "soon" is not a duration like 30s or 2m');
    const both = await runCli(['artifact', 'follow', `${reg.host}/rules/habit:stable`, '--once', '--falco-versions', url, '--engine-versions-url', `${url}2`], { env });
    expect(both.code).toBe(2);
  });

  it('artifact search --min-score: a name close enough to a keyword matches too (a typo)', async () => {
    const plain = await runCli(['artifact', 'search', 'k8sadit', '-o', 'json'], { env });
    expect(JSON.parse(plain.stdout)).toEqual([]);
    const fuzzy = await runCli(['artifact', 'search', 'k8sadit', '--min-score', '0.65', '-o', 'json'], { env });
    expect((JSON.parse(fuzzy.stdout) as { name: string }[]).map((h) => h.name)).toEqual(['k8saudit']);
    const table = await runCli(['artifact', 'search', 'k8sadit', '--min-score', '0.65'], { env });
    expect(table.stdout).toMatch(/^local\s+k8saudit\s+plugin/m);
    const strict = await runCli(['artifact', 'search', 'k8sadit', '--min-score', '0.95', '-o', 'json'], { env });
    expect(JSON.parse(strict.stdout)).toEqual([]);
    const bad = await runCli(['artifact', 'search', 'x', '--min-score', '1.5'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--min-score "1.5" must be a number above 0 and at most 1');
  });
});
