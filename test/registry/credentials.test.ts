import { chmod, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/registry/auth/credentials.js';
import { errorOf } from '../helpers/errors.js';

/** A fake home: every default path of the store points inside it, never at the real home. */
async function sandbox() {
  const home = await mkdtemp(join(tmpdir(), 'creds-'));
  const env = {
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    DOCKER_CONFIG: join(home, '.docker'),
    PATH: `${join(home, 'bin')}:/usr/bin:/bin`,
  };
  await mkdir(join(home, 'bin'));
  await mkdir(env.DOCKER_CONFIG);
  return { home, env, own: join(env.XDG_CONFIG_HOME, 'diginfractl', 'config.json'), docker: join(env.DOCKER_CONFIG, 'config.json') };
}

/** A real docker credential helper: a shell script on PATH. The server URL it was given is logged. */
async function helper(home: string, name: string, body: string): Promise<void> {
  const path = join(home, 'bin', `docker-credential-${name}`);
  await writeFile(path, `#!/bin/sh\n[ "$1" = get ] || exit 3\nread server\necho "$server" >> "${home}/${name}.log"\n${body}\n`);
  await chmod(path, 0o755);
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, JSON.stringify(value));
}

describe('CredentialStore paths', () => {
  it('defaults to $XDG_CONFIG_HOME/diginfractl and $DOCKER_CONFIG, or ~/.config and ~/.docker', async () => {
    const { home, env, own } = await sandbox();
    expect(new CredentialStore({ env }).path).toBe(own);
    expect(new CredentialStore({ env: { HOME: home } }).path).toBe(join(home, '.config', 'diginfractl', 'config.json'));
    expect(new CredentialStore({ env: { HOME: home, XDG_CONFIG_HOME: 'relative/ignored' } }).path).toBe(join(home, '.config', 'diginfractl', 'config.json'));
    expect(new CredentialStore({ env, configDir: join(home, 'elsewhere') }).path).toBe(join(home, 'elsewhere', 'config.json'));
    await writeJson(join(home, '.docker-alt', 'config.json'), { auths: { 'r.io': { auth: b64('alt:1') } } });
    expect((await new CredentialStore({ env, dockerConfigDir: join(home, '.docker-alt') }).get('r.io'))?.username).toBe('alt');
  });
});

describe('CredentialStore.save / remove', () => {
  it('saves docker-format entries (dir 0700, file 0600) and removes them', async () => {
    const { env, own } = await sandbox();
    const store = new CredentialStore({ env });
    await store.save('registry.example:5000', { username: 'alice', password: 'p:ss' });
    expect(store.path).toBe(own);
    expect((await stat(own)).mode & 0o777).toBe(0o600);
    expect((await stat(join(own, '..'))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(own, 'utf8'))).toEqual({ auths: { 'registry.example:5000': { auth: b64('alice:p:ss') } } });
    expect(await store.get('registry.example:5000')).toEqual({ username: 'alice', password: 'p:ss' });
    expect(await store.remove('registry.example:5000')).toBe(true);
    expect(await store.remove('registry.example:5000')).toBe(false);
    expect(await store.get('registry.example:5000')).toBeUndefined();
    expect((await stat(own)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(own, '..'))).toEqual(['config.json']);
  });

  it('keeps other entries and settings, replaces alias keys, and tightens a loose file mode', async () => {
    const { env, own } = await sandbox();
    await writeJson(own, {
      auths: { 'https://r.io/v1/': { auth: b64('old:1') }, 'other.io': { auth: b64('o:2') } },
      credHelpers: { 'x.io': 'corp' },
      HttpHeaders: { 'User-Agent': 'me' },
    });
    await chmod(own, 0o644);
    const store = new CredentialStore({ env });
    await store.save('https://r.io', { username: 'new', password: '3' });
    expect(JSON.parse(await readFile(own, 'utf8'))).toEqual({
      auths: { 'other.io': { auth: b64('o:2') }, 'r.io': { auth: b64('new:3') } },
      credHelpers: { 'x.io': 'corp' },
      HttpHeaders: { 'User-Agent': 'me' },
    });
    expect((await stat(own)).mode & 0o777).toBe(0o600);
    expect(await store.remove('http://other.io/')).toBe(true);
    expect(JSON.parse(await readFile(own, 'utf8')).auths).toEqual({ 'r.io': { auth: b64('new:3') } });
  });

  it('stores Docker Hub under docker\'s own key, and identity tokens as identitytoken', async () => {
    const { env, own } = await sandbox();
    const store = new CredentialStore({ env });
    await store.save('docker.io', { username: 'hub', password: 'pw' });
    await store.save('quay.io', { identityToken: 'refresh' });
    expect(JSON.parse(await readFile(own, 'utf8')).auths).toEqual({
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      'quay.io': { identitytoken: 'refresh' },
    });
    expect(await store.get('index.docker.io')).toEqual({ username: 'hub', password: 'pw' });
    expect(await store.get('quay.io')).toEqual({ identityToken: 'refresh' });
    expect(await store.remove('docker.io')).toBe(true);
  });

  it('refuses what docker\'s format cannot hold, without echoing the secret', async () => {
    const { env } = await sandbox();
    const store = new CredentialStore({ env });
    const colon = await errorOf(store.save('r.io', { username: 'a:b', password: 'hunter2' }));
    expect(colon.code).toBe('USAGE');
    expect(colon.message).not.toContain('hunter2');
    expect((await errorOf(store.save('r.io', { username: 'a' }))).code).toBe('USAGE');
    expect((await errorOf(store.save('', { username: 'a', password: 'b' }))).code).toBe('USAGE');
  });

  it('does not overwrite a corrupt file it cannot read', async () => {
    const { env, own } = await sandbox();
    await mkdir(join(own, '..'), { recursive: true });
    await writeFile(own, '{"auths": {');
    const err = await errorOf(new CredentialStore({ env }).save('r.io', { username: 'a', password: 'b' }));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(await readFile(own, 'utf8')).toBe('{"auths": {');
  });

  it('remove() is false when the file does not exist', async () => {
    const { env } = await sandbox();
    expect(await new CredentialStore({ env }).remove('r.io')).toBe(false);
  });
});

describe('CredentialStore.get', () => {
  it('reads docker config.json, including the Docker Hub key and identity tokens', async () => {
    const { env, docker } = await sandbox();
    await writeJson(docker, {
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
        'https://ghcr.io': { username: 'u', password: 'p' },
        'quay.io': { identitytoken: 'refresh-me' },
      },
    });
    const store = new CredentialStore({ env });
    expect(await store.get('docker.io')).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(await store.get('registry-1.docker.io')).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(await store.get('ghcr.io')).toEqual({ username: 'u', password: 'p' });
    expect(await store.get('quay.io')).toEqual({ identityToken: 'refresh-me' });
    expect(await store.get('other.io')).toBeUndefined();
  });

  it.each([['r.io'], ['https://r.io'], ['http://r.io'], ['https://r.io/v1/'], ['https://R.IO/v2/']])('matches a key written as %s', async (key) => {
    const { env, docker } = await sandbox();
    await writeJson(docker, { auths: { [key]: { auth: b64('u:p') } } });
    const store = new CredentialStore({ env });
    expect(await store.get('r.io')).toEqual({ username: 'u', password: 'p' });
    expect(await store.get('r.io:5000')).toBeUndefined();
  });

  it('prefers an exact key over a loose one', async () => {
    const { env, docker } = await sandbox();
    await writeJson(docker, { auths: { 'https://r.io/v1/': { auth: b64('loose:1') }, 'r.io': { auth: b64('exact:1') } } });
    expect((await new CredentialStore({ env }).get('r.io'))?.username).toBe('exact');
  });

  it('decodes base64 auth with colons in the password, and with the username field beside an identity token', async () => {
    const { env, docker } = await sandbox();
    await writeJson(docker, {
      auths: {
        'a.io': { auth: `${b64('user:pa:ss:word')}\n` },
        'b.io': { auth: b64('tok-user:'), identitytoken: 'id-token' },
        'c.io': { auth: b64('only-user:') },
      },
    });
    const store = new CredentialStore({ env });
    expect(await store.get('a.io')).toEqual({ username: 'user', password: 'pa:ss:word' });
    expect(await store.get('b.io')).toEqual({ username: 'tok-user', identityToken: 'id-token' });
    expect(await store.get('c.io')).toEqual({ username: 'only-user' });
  });

  it('names the file and key of an auth that is not user:password, never its value', async () => {
    const { env, docker } = await sandbox();
    await writeJson(docker, { auths: { 'r.io': { auth: b64('no-colon-secret') } } });
    const err = await errorOf(new CredentialStore({ env }).get('r.io'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(docker);
    expect(err.message).toContain('"r.io"');
    expect(err.message).not.toContain('no-colon-secret');
    expect(err.message).not.toContain(b64('no-colon-secret'));
  });

  it('prefers its own file, then extra files (in order), then docker', async () => {
    const { home, env, docker } = await sandbox();
    const extra1 = join(home, 'mounted1.json');
    const extra2 = join(home, 'mounted2.json');
    await writeJson(extra1, { auths: { 'one.io': { auth: b64('extra1:1') } } });
    await writeJson(extra2, { auths: { 'one.io': { auth: b64('extra2:1') }, 'r.io': { auth: b64('extra2:1') } } });
    await writeJson(docker, { auths: { 'r.io': { auth: b64('docker:1') }, 'd.io': { auth: b64('docker:1') } } });
    const store = new CredentialStore({ env, extraFiles: [extra1, join(home, 'missing.json'), extra2] });
    expect((await store.get('one.io'))?.username).toBe('extra1');
    expect((await store.get('r.io'))?.username).toBe('extra2');
    expect((await store.get('d.io'))?.username).toBe('docker');
    await store.save('r.io', { username: 'own', password: '1' });
    expect((await store.get('r.io'))?.username).toBe('own');
    expect(JSON.parse(await readFile(extra2, 'utf8')).auths['r.io']).toEqual({ auth: b64('extra2:1') });
  });
});

describe('CredentialStore with credential helpers', () => {
  it('runs credHelpers and credsStore helpers, giving them the server URL on stdin', async () => {
    const { home, env, docker } = await sandbox();
    await helper(home, 'corp', 'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helper-user\\",\\"Secret\\":\\"helper-secret\\"}"');
    await helper(
      home,
      'store',
      'case "$server" in known.io|https://index.docker.io/v1/) echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"tok\\"}";; *) echo "credentials not found in native keychain"; exit 1;; esac',
    );
    await writeJson(docker, { credHelpers: { 'corp.io': 'corp' }, credsStore: 'store' });
    const store = new CredentialStore({ env });
    expect(await store.get('corp.io')).toEqual({ username: 'helper-user', password: 'helper-secret' });
    expect(await store.get('known.io')).toEqual({ identityToken: 'tok' });
    expect(await store.get('docker.io')).toEqual({ identityToken: 'tok' });
    expect(await store.get('unknown.io')).toBeUndefined();
    expect(await readFile(join(home, 'corp.log'), 'utf8')).toBe('corp.io\n');
    expect(await readFile(join(home, 'store.log'), 'utf8')).toBe('known.io\nhttps://index.docker.io/v1/\nunknown.io\n');
  });

  it('orders credHelpers, then auths, then credsStore within a file', async () => {
    const { home, env, docker } = await sandbox();
    await helper(home, 'h', 'if [ "$server" = helped.io ]; then echo "{\\"Username\\":\\"from-helper\\",\\"Secret\\":\\"s\\"}"; else echo "credentials not found"; exit 1; fi');
    await helper(home, 'st', 'echo "{\\"Username\\":\\"from-store\\",\\"Secret\\":\\"s\\"}"');
    await writeJson(docker, {
      credHelpers: { 'helped.io': 'h', 'miss.io': 'h' },
      auths: { 'helped.io': { auth: b64('from-auths:1') }, 'miss.io': { auth: b64('from-auths:1') }, 'placeholder.io': {} },
      credsStore: 'st',
    });
    const store = new CredentialStore({ env });
    expect((await store.get('helped.io'))?.username).toBe('from-helper');
    // The helper has nothing for miss.io: auths answers.
    expect((await store.get('miss.io'))?.username).toBe('from-auths');
    // An empty auths entry (what docker writes beside a credsStore) falls through to the store.
    expect((await store.get('placeholder.io'))?.username).toBe('from-store');
    expect((await store.get('anything.io'))?.username).toBe('from-store');
  });

  it('names a broken helper and never shows its output', async () => {
    const { home, env, docker } = await sandbox();
    await helper(home, 'broken', 'echo "token=SUPERSECRET" >&2; echo "SUPERSECRET"; exit 7');
    await helper(home, 'garbage', 'echo "not json SUPERSECRET"');
    await helper(home, 'nosecret', 'echo "{\\"Username\\":\\"u\\"}"');
    await writeJson(docker, { credHelpers: { 'x.io': 'missing', 'b.io': 'broken', 'g.io': 'garbage', 'n.io': 'nosecret' } });
    const store = new CredentialStore({ env });
    const missing = await errorOf(store.get('x.io'));
    expect(missing.code).toBe('AUTH_REQUIRED');
    expect(missing.message).toContain('credential helper docker-credential-missing is not on PATH');
    expect(missing.message).toContain(docker);
    expect(missing.hint).toContain('docker-credential-missing');
    const broken = await errorOf(store.get('b.io'));
    expect(broken.message).toContain('docker-credential-broken failed (exit status 7)');
    const garbage = await errorOf(store.get('g.io'));
    expect(garbage.message).toContain('docker-credential-garbage answered something other than JSON');
    const nosecret = await errorOf(store.get('n.io'));
    expect(nosecret.message).toContain('without a "Secret"');
    for (const err of [broken, garbage]) {
      expect(err.message).not.toContain('SUPERSECRET');
      expect(err.hint ?? '').not.toContain('SUPERSECRET');
    }
  });

  it('survives a helper that exits without reading stdin', async () => {
    const { home, env, docker } = await sandbox();
    const path = join(home, 'bin', 'docker-credential-rude');
    await writeFile(path, '#!/bin/sh\necho "{\\"Username\\":\\"u\\",\\"Secret\\":\\"s\\"}"\n');
    await chmod(path, 0o755);
    await writeJson(docker, { credsStore: 'rude' });
    const store = new CredentialStore({ env });
    for (let i = 0; i < 5; i++) expect(await store.get(`r${i}.io`)).toEqual({ username: 'u', password: 's' });
  });

  it('refuses a helper name that is a path', async () => {
    const { env, docker } = await sandbox();
    await writeJson(docker, { credHelpers: { 'r.io': '../../tmp/evil' } });
    const err = await errorOf(new CredentialStore({ env }).get('r.io'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('credHelpers["r.io"] is not a helper name');
  });

  it('gives up on a helper after 10 s', async () => {
    const { home, env, docker } = await sandbox();
    await helper(home, 'slow', 'sleep 60');
    await writeJson(docker, { credsStore: 'slow' });
    const started = Date.now();
    const err = await errorOf(new CredentialStore({ env }).get('r.io'));
    expect(err.code).toBe('AUTH_REQUIRED');
    expect(err.message).toContain('docker-credential-slow did not answer within 10 s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_500);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 20_000);
});

describe('CredentialStore with corrupt files', () => {
  it.each([
    ['trailing junk', '{"auths": {"r.io": {"auth": "SECRETVALUE"}}} trailing'],
    ['a bad token', '{"auths": {"r.io": {"auth": tru SECRETVALUE}}}'],
    ['a bare word', 'SECRETVALUE'],
    ['a cut-off string', '{"auths": {"r.io": {"auth": "SECRETVALUE'],
    ['a missing brace', '{"auths": {"r.io": {"auth": "SECRETVALUE"}'],
  ])('names the file and never quotes its content (%s)', async (_name, text) => {
    const { env, docker } = await sandbox();
    await writeFile(docker, text);
    const err = await errorOf(new CredentialStore({ env }).get('r.io'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(docker);
    expect(err.message).toContain('is not valid JSON');
    expect(err.message).not.toContain('SECRET');
    expect(err.hint).toContain(docker);
  });

  it.each([
    ['an array', '[]', 'it is not a JSON object'],
    ['auths not an object', '{"auths": "x"}', '"auths" is not an object'],
    ['an entry not an object', '{"auths": {"r.io": "SECRETVALUE"}}', 'auths["r.io"] is not an object'],
    ['an auth not a string', '{"auths": {"r.io": {"auth": 42}}}', 'auths["r.io"].auth is not a string'],
    ['credsStore not a name', '{"credsStore": 42}', '"credsStore" is not a helper name'],
  ])('explains a file of the wrong shape (%s)', async (_name, text, message) => {
    const { env, own } = await sandbox();
    await mkdir(join(own, '..'), { recursive: true });
    await writeFile(own, text);
    const err = await errorOf(new CredentialStore({ env }).get('r.io'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(own);
    expect(err.message).toContain(message);
    expect(err.message).not.toContain('SECRETVALUE');
  });

  it('treats an empty file as empty, and a directory in its place as an error', async () => {
    const { env, own, docker } = await sandbox();
    await mkdir(join(own, '..'), { recursive: true });
    await writeFile(own, '');
    await writeJson(docker, { auths: { 'r.io': { auth: b64('d:1') } } });
    expect((await new CredentialStore({ env }).get('r.io'))?.username).toBe('d');
    const { rm } = await import('node:fs/promises');
    await rm(own);
    await mkdir(own);
    expect((await errorOf(new CredentialStore({ env }).get('r.io'))).code).toBe('CONFIG_INVALID');
  });
});
