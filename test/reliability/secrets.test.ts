/**
 * Secrets stay secret when the user gets something wrong: a misspelt key, a value of the wrong type,
 * a URL with credentials. The built CLI, its own HOME and cache; every byte it prints and every file
 * it leaves in its cache is searched for the secret.
 */
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliEnv, runCli, type CliResult } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const SECRET = 'hunter2-S3cr3t-value';

/** Every file under `dir`, recursively, with its text. */
async function filesUnder(dir: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.push({ path, text: await readFile(path, 'utf8') });
  }
  return out;
}

/** Runs `config validate` and `config show` on `config` (YAML text); returns their output and the parse cache. */
async function runWith(configText: string) {
  const env = await cliEnv();
  await writeFile(env.DIGINFRACTL_CONFIG!, configText);
  const validate = await runCli(['config', 'validate', env.DIGINFRACTL_CONFIG!], { env });
  const show = await runCli(['config', 'show'], { env });
  const showJson = await runCli(['config', 'show', '-o', 'json'], { env });
  const cache = await filesUnder(env.XDG_CACHE_HOME!);
  return { env, validate, show, showJson, cache, printed: [validate, show, showJson].map((r) => r.stdout + r.stderr).join('\n') };
}

const basic = (entry: Record<string, unknown>) => stringify({ registry: { auth: { basic: [{ registry: 'ghcr.io', user: 'me', ...entry }] } } });
const oauth = (entry: Record<string, unknown>) =>
  stringify({ registry: { auth: { oauth: [{ registry: 'ghcr.io', clientID: 'id', tokenURL: 'https://auth.example.com/token', ...entry }] } } });

describe('a secret under a misspelt key', () => {
  it.each([
    ['pasword', basic({ pasword: SECRET })],
    ['Password', basic({ Password: SECRET })],
    ['passwd', basic({ passwd: SECRET })],
    ['clientsecret', oauth({ clientsecret: SECRET })],
    ['client_secret', oauth({ client_secret: SECRET })],
    ['secert', oauth({ secert: SECRET })],
    ['a top-level token', `token: ${SECRET}\n`],
    ['a commented-out password', `# password: ${SECRET}\nfollow:\n  every: 1h\n`],
  ])('%s: never written to the parsed-config cache, never printed', async (_label, text) => {
    const r = await runWith(text);
    for (const f of r.cache) expect(f.text, f.path).not.toContain(SECRET);
    expect(r.printed).not.toContain(SECRET);
  });

  it('the cache still serves a config that holds no secret (it is what keeps artifact search fast)', async () => {
    const r = await runWith('follow:\n  every: 1h\n');
    expect(r.validate.code).toBe(0);
    expect(r.cache.map((f) => f.path).some((p) => p.includes('parsed-config'))).toBe(true);
  });

  it('a password under its right name: masked by config show, never cached (as before)', async () => {
    const r = await runWith(basic({ password: SECRET }));
    expect(r.validate.code).toBe(0);
    expect(r.show.stdout).toContain('password: "********"');
    for (const f of r.cache) expect(f.text, f.path).not.toContain(SECRET);
    expect(r.printed).not.toContain(SECRET);
  });
});

describe('a secret in a value of the wrong type or shape', () => {
  it.each([
    ['basic as a string', stringify({ registry: { auth: { basic: `me:${SECRET}` } } }), 'registry.auth.basic must be a list of maps'],
    ['a basic entry as a string', stringify({ registry: { auth: { basic: [`me:${SECRET}`] } } }), 'registry.auth.basic[0] must be a map, not a string'],
    ['oauth as a string', stringify({ registry: { auth: { oauth: SECRET } } }), 'registry.auth.oauth must be a list of maps'],
    ['a password as a list', basic({ password: [SECRET] }), 'registry.auth.basic[0].password must be a string, not object'],
    ['an index URL with credentials that does not parse', stringify({ indexes: [{ name: 'x', url: `https://me:${SECRET}@[bad/index.yaml` }] }), 'indexes[0].url: "https://me:********@[bad/index.yaml" is not a URL'],
    ['indexes as a URL with credentials', stringify({ indexes: `https://me:${SECRET}@example.com/i.yaml` }), 'indexes must be a list of maps with name, url, not "https://me:********@example.com/i.yaml"'],
    ['a versions URL with credentials that does not parse', stringify({ follow: { engineVersionsUrl: `https://me:${SECRET}@[bad/v.json` } }), 'follow.engineVersionsUrl: "https://me:********@[bad/v.json" is not a URL'],
  ])('%s: config validate says what is wrong without the secret', async (_label, text, problem) => {
    const r = await runWith(text);
    expect(r.validate.code).toBe(1);
    expect(r.validate.stderr).toContain(problem);
    expect(r.printed).not.toContain(SECRET);
    for (const f of r.cache) expect(f.text, f.path).not.toContain(SECRET);
  });
});

describe('a password in a URL where a URL is not expected', () => {
  it('config show masks it in any value, e.g. the validation command', async () => {
    const r = await runWith(stringify({ follow: { validateCmd: `curl -fsS https://me:${SECRET}@example.com/check` } }));
    expect(r.validate.code).toBe(0);
    expect(r.show.stdout).toContain('curl -fsS https://me:********@example.com/check');
    expect(r.printed).not.toContain(SECRET);
    for (const f of r.cache) expect(f.text, f.path).not.toContain(SECRET);
  });
});

/** Neither the password nor the basic-auth header made of it, anywhere in what the CLI printed. */
function expectNoPassword(r: CliResult, user: string, password: string): void {
  const printed = r.stdout + r.stderr;
  expect(printed).not.toContain(password);
  expect(printed).not.toContain(Buffer.from(`${user}:${password}`).toString('base64'));
  expect(printed).not.toContain(encodeURIComponent(password));
}

describe('repo login with credentials in the registry argument', () => {
  it.each([
    ['http://bob:' + SECRET + '@registry.example.com'],
    ['https://bob:' + SECRET + '@registry.example.com:5000/'],
    ['bob:' + SECRET + '@registry.example.com'],
  ])('%s: refused (exit 2), saying how to call it; nothing saved, the password never printed', async (arg) => {
    const env = await cliEnv();
    const r = await runCli(['repo', 'login', arg, '-u', 'bob', '--password-stdin'], { env, input: 'other\n' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give the registry host alone');
    expect(r.stderr).toContain('diginfractl repo login registry.example.com');
    expect(r.stderr).toContain('--password-stdin');
    expectNoPassword(r, 'bob', SECRET);
    await expect(access(join(env.XDG_CONFIG_HOME!, 'diginfractl/config.json'))).rejects.toThrow();
  });

  it('a URL without credentials is refused too, naming the host to give', async () => {
    const env = await cliEnv();
    const r = await runCli(['repo', 'login', 'https://ghcr.io', '-u', 'bob', '--password-stdin'], { env, input: `${SECRET}\n` });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('diginfractl repo login ghcr.io -u USER --password-stdin');
    expectNoPassword(r, 'bob', SECRET);
  });
});

describe.each([
  { name: 'basic auth (htpasswd)', auth: 'htpasswd' as const },
  { name: 'token auth', auth: 'token' as const },
])('repo login at --log-level trace, $name registry: the password is never printed', ({ auth }) => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth, password: `pw-${SECRET}` });
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it('with the right password (stdin), a wrong one, and -p', async () => {
    const env = await cliEnv();
    const base = ['--log-level', 'trace', 'repo', 'login', reg.host, '-u', reg.username!, '--plain-http'];
    const right = await runCli([...base, '--password-stdin'], { env, input: `${reg.password}\n` });
    expect(right.code, right.stderr).toBe(0);
    expectNoPassword(right, reg.username!, reg.password!);

    const wrong = await runCli([...base, '--password-stdin'], { env, input: `wrong-${SECRET}\n` });
    expect(wrong.code).toBe(1);
    expectNoPassword(wrong, reg.username!, `wrong-${SECRET}`);

    const flag = await runCli([...base, '-p', reg.password!], { env });
    expect(flag.code, flag.stderr).toBe(0);
    expect(flag.stderr).toContain('insecure');
    expectNoPassword(flag, reg.username!, reg.password!);

    // And a command that then uses the saved credentials.
    const pull = await runCli(['--log-level', 'trace', 'repo', 'pull', `${reg.host}/none/here:1`, '--plain-http'], { env });
    expectNoPassword(pull, reg.username!, reg.password!);
  });
});
