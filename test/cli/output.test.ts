/**
 * What scripts rely on (docs/output.md), with the built CLI against the real registry: every command
 * that prints data takes `-o json` and prints the documented shape (an array for the commands that
 * take several references, also for one); an error with `-o json` is a JSON object on stderr with a
 * stable code; `--log-format` chooses how logs look.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliEnv, requireCli, ROOT, runCli, subcommandsOf, type CliResult } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { writeIndexFile } from './index-file.js';
import { jsonErrorIn } from './json-error.js';

let reg: TestRegistry;
let env: NodeJS.ProcessEnv & { HOME: string };
let dir: string;
let rulesFile: string;

/** Runs the CLI with -o json; expects success and returns the parsed stdout. */
async function json(...args: string[]): Promise<unknown> {
  const r = await runCli([...args, '-o', 'json'], { env });
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as unknown;
}

/** The keys of an object (or of each element of an array), sorted, for shape checks. */
function keysOf(value: unknown): string[] {
  return Object.keys(value as object).sort();
}

beforeAll(async () => {
  requireCli('artifact', ['search', 'info', 'install', 'list', 'follow', 'rollback', 'manifest', 'config']);
  reg = await startRegistry();
  env = await cliEnv();
  dir = await mkdtemp(join(tmpdir(), 'diginfractl-output-'));
  rulesFile = join(dir, 'out_rules.yaml');
  await writeFile(rulesFile, '- list: out\n  items: []\n');
  const index = await writeIndexFile(dir, 'index.yaml', [{ name: 'out-rules', type: 'rulesfile', registry: reg.host, repository: 'rules/out', description: 'Output rules', keywords: ['out'] }]);
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({
      indexes: [],
      registry: { plainHttp: [reg.host] },
      install: { rulesfilesDir: join(dir, 'rules'), pluginsDir: join(dir, 'plugins') },
      follow: { rulesfilesDir: join(dir, 'followed'), stateDir: join(dir, 'state') },
    }),
  );
  const added = (await json('index', 'add', 'local', index)) as Record<string, unknown>;
  expect(added).toEqual({ name: 'local', url: index, replaced: false, entries: 1 });
}, 60_000);

afterAll(async () => {
  await reg?.stop();
});

describe('-o json on every command that prints data', () => {
  it('docs/output.md documents exactly the commands that take -o', async () => {
    const doc = await readFile(join(ROOT, 'docs/output.md'), 'utf8');
    const documented = [...doc.matchAll(/^### (.+)$/gm)].flatMap((m) => m[1]!.split(', ').map((c) => c.replace(/ --once$/, '')));
    const withOutput: string[] = [];
    for (const group of ['repo', 'index', 'artifact', 'config']) {
      for (const cmd of subcommandsOf(group)) {
        if (cmd === 'help') continue;
        const help = await runCli([group, cmd, '--help'], { env });
        if (/^\s+-o, --output <format>/m.test(help.stdout)) withOutput.push(`${group} ${cmd}`);
      }
    }
    if (/^\s+-o, --output <format>/m.test((await runCli(['version', '--help'], { env })).stdout)) withOutput.push('version');
    const hidden = documented.filter((d) => !withOutput.includes(d));
    expect(hidden).toEqual(['registry auth basic']); // an alias, hidden from help
    expect(/^\s+-o, --output <format>/m.test((await runCli(['registry', 'auth', 'basic', '--help'], { env })).stdout)).toBe(true);
    expect(withOutput.filter((c) => !documented.includes(c))).toEqual([]);
    expect(withOutput).toEqual(expect.arrayContaining(['index add', 'index remove', 'repo login', 'repo logout', 'config validate', 'version']));
  });

  it('repo: push, pull (an array, also for one reference), sign, verify, copy, login, logout', async () => {
    const pushed = (await json('repo', 'push', `${reg.host}/rules/out`, rulesFile, '--type', 'rulesfile', '--version', '1.0.0', '-t', 'stable')) as Record<string, unknown>;
    expect(keysOf(pushed)).toEqual(['digest', 'mediaType', 'reference', 'tags']);
    expect(pushed.tags).toEqual(['1.0.0', 'stable']);

    const dest = await mkdtemp(join(dir, 'pull-'));
    const pulled = (await json('repo', 'pull', `${reg.host}/rules/out:1.0.0`, '--dest', dest)) as Record<string, unknown>[];
    expect(pulled).toHaveLength(1);
    expect(keysOf(pulled[0])).toEqual(['dest', 'digest', 'files', 'manifestDigest', 'name', 'reference', 'type', 'version']);
    const two = (await json('repo', 'pull', `${reg.host}/rules/out:1.0.0`, `${reg.host}/rules/out:stable`, '--dest', dest)) as unknown[];
    expect(two).toHaveLength(2);

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'k.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(join(dir, 'k.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const signed = (await json('repo', 'sign', `${reg.host}/rules/out:1.0.0`, '--key', join(dir, 'k.pem'))) as Record<string, unknown>;
    expect(keysOf(signed)).toEqual(['digest', 'reference', 'signature']);
    const verified = (await json('repo', 'verify', `${reg.host}/rules/out:1.0.0`, '--verify-key', join(dir, 'k.pub'))) as Record<string, unknown>;
    expect(verified).toMatchObject({ digest: pushed.digest, verified: true });

    const copied = (await json('repo', 'copy', `${reg.host}/rules/out:1.0.0`, `oci:${join(dir, 'layout')}`)) as Record<string, unknown>;
    expect(keysOf(copied)).toEqual(['digest', 'signatures', 'source', 'target']);

    const login = (await runCli(['repo', 'login', reg.host, '-u', 'me', '--password-stdin', '-o', 'json'], { env, input: 'secret\n' })) as CliResult;
    expect(login.code, login.stderr).toBe(0);
    expect(JSON.parse(login.stdout)).toEqual({ registry: reg.host, username: 'me', verified: false, credentialsFile: join(env.XDG_CONFIG_HOME!, 'diginfractl', 'config.json') });
    expect(login.stdout).not.toContain('secret');
    expect(await json('repo', 'logout', reg.host)).toEqual({ registry: reg.host, removed: true, credentialsFile: join(env.XDG_CONFIG_HOME!, 'diginfractl', 'config.json') });
  });

  it('index: list, update, remove (add is in the set-up)', async () => {
    const list = (await json('index', 'list')) as Record<string, unknown>[];
    expect(list.map(keysOf)).toEqual([['added', 'entries', 'fetched', 'name', 'updated', 'url']]);
    const update = (await json('index', 'update')) as Record<string, unknown>[];
    expect(update).toEqual([{ name: 'local', status: 'unchanged', entries: 1 }]);
    const other = join(dir, 'other.yaml');
    await writeFile(other, '[]\n');
    await json('index', 'add', 'other', other);
    expect(await json('index', 'remove', 'other')).toEqual({ removed: ['other'] });
  });

  it('artifact: search, info (an array, also for one), manifest, config, install, list, follow --once, rollback', async () => {
    const found = (await json('artifact', 'search', 'out')) as Record<string, unknown>[];
    expect(found).toEqual([{ index: 'local', name: 'out-rules', type: 'rulesfile', registry: reg.host, repository: 'rules/out', description: 'Output rules', keywords: ['out'] }]);

    const info = (await json('artifact', 'info', 'out-rules:1.0.0')) as Record<string, unknown>[];
    expect(info).toHaveLength(1);
    expect(keysOf(info[0])).toEqual(
      ['annotations', 'dependencies', 'digest', 'entry', 'index', 'mediaType', 'name', 'platforms', 'reference', 'referrers', 'requirements', 'resolvedTag', 'signaturePolicy', 'signatures', 'tag', 'tags', 'type', 'version'].sort(),
    );
    expect((await json('artifact', 'manifest', 'out-rules:1.0.0')) as Record<string, unknown>).toMatchObject({ schemaVersion: 2 });
    expect((await json('artifact', 'config', 'out-rules:1.0.0')) as Record<string, unknown>).toMatchObject({ name: 'out', version: '1.0.0' });
    const table = await runCli(['artifact', 'manifest', 'out-rules:1.0.0', '-o', 'table'], { env });
    expect(table.code).toBe(2);

    const installed = (await json('artifact', 'install', 'out-rules:1.0.0')) as Record<string, unknown>;
    expect(keysOf(installed)).toEqual(['downloaded', 'installed', 'lockfile', 'platform', 'removed', 'skipped', 'warnings']);
    expect(keysOf((installed.installed as unknown[])[0])).toEqual(
      ['changed', 'dir', 'digest', 'files', 'manifestDigest', 'name', 'ref', 'requested', 'requiredBy', 'type', 'version'].sort(),
    );

    const followed = (await json('artifact', 'follow', 'out-rules:stable', '--once')) as Record<string, unknown>[];
    expect(followed).toEqual([{ ref: 'out-rules:stable', result: 'updated', digest: expect.stringMatching(/^sha256:/), version: '1.0.0' }]);
    await writeFile(rulesFile, '- list: out2\n  items: []\n');
    await json('repo', 'push', `${reg.host}/rules/out`, rulesFile, '--type', 'rulesfile', '--version', '1.1.0', '-t', 'stable');
    expect(((await json('artifact', 'follow', 'out-rules:stable', '--once')) as { version: string }[])[0]!.version).toBe('1.1.0');

    const listed = (await json('artifact', 'list')) as Record<string, unknown>;
    expect(keysOf(listed)).toEqual(['items', 'lockfiles', 'stateDir']);

    const rolled = (await json('artifact', 'rollback', 'out-rules:stable')) as Record<string, unknown>;
    expect(keysOf(rolled)).toEqual(['dir', 'from', 'placed', 'ref', 'removed', 'to', 'unchanged']);
    expect(rolled).toMatchObject({ from: { version: '1.1.0' }, to: { version: '1.0.0' } });
  }, 60_000);

  it('config show, config validate, version', async () => {
    expect(keysOf(await json('config', 'show'))).toEqual(['config', 'env', 'exists', 'path', 'registryTimeouts', 'sources']);
    expect(await json('config', 'validate', env.DIGINFRACTL_CONFIG!)).toEqual({ path: env.DIGINFRACTL_CONFIG, valid: true, warnings: [] });
    expect(await json('version')).toEqual({ version: '0.1.0' });
  });
});

describe('errors with -o json', () => {
  it('a failure is one JSON object on stderr with a stable code, exit 1; stdout stays empty', async () => {
    const r = await runCli(['artifact', 'info', `${reg.host}/rules/none:1.0.0`, '-o', 'json'], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(jsonErrorIn(r.stderr)).toMatchObject({ code: 'NOT_FOUND', message: expect.stringContaining(`${reg.host}/rules/none`) });
  });

  it("usage errors, commander's own included, are USAGE or REF_INVALID with exit 2", async () => {
    const unknown = await runCli(['artifact', 'search', '--no-such-flag', '-o', 'json'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe(`{"error":{"code":"USAGE","message":"unknown option '--no-such-flag'"}}`);
    const missing = await runCli(['repo', 'pull', '--output=json'], { env });
    expect(missing.code).toBe(2);
    expect(jsonErrorIn(missing.stderr)).toEqual({ code: 'USAGE', message: "missing required argument 'ref'" });
    const badRef = await runCli(['repo', 'pull', 'localhost:5000/Upper', '-ojson'], { env });
    expect(badRef.code).toBe(2);
    expect(jsonErrorIn(badRef.stderr)).toMatchObject({ code: 'REF_INVALID', hint: expect.any(String) });
    const badConfig = join(dir, 'bad.yaml');
    await writeFile(badConfig, 'follow:\n  every: often\n');
    const invalid = await runCli(['config', 'validate', badConfig, '-o', 'json'], { env });
    expect(invalid.code).toBe(1);
    expect(jsonErrorIn(invalid.stderr)).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('follow.every') });
  });

  it('without -o json, errors stay error: and hint: lines', async () => {
    const r = await runCli(['artifact', 'info', `${reg.host}/rules/none:1.0.0`], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*rules\/none/m);
  });
});

describe('--log-format', () => {
  const warnOnce = ['artifact', 'follow', 'out-rules:stable', '--once', '--tmp-dir', '/tmp'];

  it('json: one JSON object per log line; text (and falcoctl\'s color): level: message lines; default off a terminal: JSON', async () => {
    const asJson = await runCli(['--log-format', 'json', ...warnOnce], { env });
    const lines = asJson.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty('level');
    for (const format of ['text', 'color']) {
      const asText = await runCli([...warnOnce, '--log-format', format], { env });
      expect(asText.stderr).toMatch(/^warn: --tmp-dir \/tmp is not used/m);
      expect(asText.stderr).not.toContain('{"level"');
    }
    const byDefault = await runCli(warnOnce, { env });
    expect(byDefault.stderr).toContain('"level":40');
    const bad = await runCli(['--log-format', 'xml', ...warnOnce], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--log-format "xml" is not one of text, json, color');
  });
});
