import { chmod, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CredentialStore } from '../../src/registry/auth/credentials.js';

async function sandbox() {
  const home = await mkdtemp(join(tmpdir(), 'creds-'));
  const env = { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), DOCKER_CONFIG: join(home, '.docker'), PATH: `${join(home, 'bin')}:${process.env.PATH}` };
  await mkdir(join(home, 'bin'));
  await mkdir(env.DOCKER_CONFIG);
  return { home, env };
}

/** A real docker credential helper: a shell script on PATH. */
async function helper(home: string, name: string, body: string): Promise<void> {
  const path = join(home, 'bin', `docker-credential-${name}`);
  await writeFile(path, `#!/bin/sh\nread server\n${body}\n`);
  await chmod(path, 0o755);
}

describe('CredentialStore', () => {
  it('saves docker-format entries with mode 0600 and removes them', async () => {
    const { env } = await sandbox();
    const store = new CredentialStore({ env });
    await store.save('registry.example:5000', { username: 'alice', password: 'p:ss' });
    expect(store.path).toBe(join(env.XDG_CONFIG_HOME, 'diginfractl/config.json'));
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(store.path, 'utf8'));
    expect(saved).toEqual({ auths: { 'registry.example:5000': { auth: Buffer.from('alice:p:ss').toString('base64') } } });
    expect(await store.get('registry.example:5000')).toEqual({ username: 'alice', password: 'p:ss' });
    expect(await store.remove('registry.example:5000')).toBe(true);
    expect(await store.remove('registry.example:5000')).toBe(false);
    expect(await store.get('registry.example:5000')).toBeUndefined();
  });

  it('reads docker config.json, including the Docker Hub key and identity tokens', async () => {
    const { env } = await sandbox();
    await writeFile(
      join(env.DOCKER_CONFIG, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
          'https://ghcr.io': { username: 'u', password: 'p' },
          'quay.io': { identitytoken: 'refresh-me' },
        },
      }),
    );
    const store = new CredentialStore({ env });
    expect(await store.get('docker.io')).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(await store.get('ghcr.io')).toEqual({ username: 'u', password: 'p' });
    expect(await store.get('quay.io')).toEqual({ identityToken: 'refresh-me' });
    expect(await store.get('other.io')).toBeUndefined();
  });

  it('prefers its own file, then extra files, then docker', async () => {
    const { home, env } = await sandbox();
    const extra = join(home, 'mounted.json');
    await writeFile(extra, JSON.stringify({ auths: { 'r.io': { auth: Buffer.from('extra:1').toString('base64') } } }));
    await writeFile(join(env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ auths: { 'r.io': { auth: Buffer.from('docker:1').toString('base64') } } }));
    const store = new CredentialStore({ env, extraFiles: [extra] });
    expect((await store.get('r.io'))?.username).toBe('extra');
    await store.save('r.io', { username: 'own', password: '1' });
    expect((await store.get('r.io'))?.username).toBe('own');
  });

  it('runs credHelpers and credsStore helpers', async () => {
    const { home, env } = await sandbox();
    await helper(home, 'corp', 'echo "{\\"ServerURL\\":\\"$server\\",\\"Username\\":\\"helper-user\\",\\"Secret\\":\\"helper-secret\\"}"');
    await helper(home, 'store', 'if [ "$server" = "known.io" ]; then echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"tok\\"}"; else echo "credentials not found in native keychain"; exit 1; fi');
    await writeFile(join(env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ credHelpers: { 'corp.io': 'corp' }, credsStore: 'store' }));
    const store = new CredentialStore({ env });
    expect(await store.get('corp.io')).toEqual({ username: 'helper-user', password: 'helper-secret' });
    expect(await store.get('known.io')).toEqual({ identityToken: 'tok' });
    expect(await store.get('unknown.io')).toBeUndefined();
  });

  it('names a broken helper and a corrupt file without leaking secrets', async () => {
    const { home, env } = await sandbox();
    await writeFile(join(env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ credHelpers: { 'x.io': 'missing' } }));
    await expect(new CredentialStore({ env }).get('x.io')).rejects.toThrow('credential helper docker-credential-missing is not on PATH');
    await mkdir(join(env.XDG_CONFIG_HOME, 'diginfractl'), { recursive: true });
    await writeFile(join(env.XDG_CONFIG_HOME, 'diginfractl/config.json'), '{"auths": {"a": {"auth": "c2VjcmV0"}');
    const err = await new CredentialStore({ env }).get('a').catch((e: Error) => e);
    expect((err as Error).message).toContain('is not valid JSON');
    expect((err as Error).message).not.toContain('c2VjcmV0');
  });
});
