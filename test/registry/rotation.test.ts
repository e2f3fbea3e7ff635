/**
 * Rotation without restarts, in the registry client, against the real registry: a stored credential
 * the registry refuses is read again from every source once before the request fails, and is not
 * kept (a pull Secret fixed in its kubelet `..data` volume works at the next request, not 5 minutes
 * later); a CA bundle that changed gets a new TLS dispatcher for the next requests while a transfer in
 * flight finishes on the old one.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialStore, RegistryClient, bufferBlob, credentialsFor, type Credential } from '../../src/registry/index.js';
import { defaultConfig } from '../../src/config/types.js';
import { tempDir } from '../helpers/fs.js';
import { mountVolume, updateVolume } from '../helpers/kubelet-volume.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeTlsFiles } from '../helpers/tls.js';

/** docker's config.json with one credential for `host`. */
function dockerConfig(host: string, username: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
}

describe('registry client: rotated credentials (htpasswd registry)', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  const client = (credentials: { get(host: string): Promise<Credential | undefined>; generation?(): number }) =>
    new RegistryClient({ hostSettings: () => ({ plainHttp: true }), retry: { attempts: 1 }, credentials });

  it('reads every source again once when the stored credential is refused, and sends the request again with what it gives now', async () => {
    const right: Credential = { username: reg.username!, password: reg.password! };
    const wrong: Credential = { username: reg.username!, password: 'rotated-away' };
    // The first read gives the old password; by the time it is refused, the source holds the new one.
    let reads = 0;
    const rotated = client({ get: async () => (reads++ === 0 ? wrong : right) });
    await rotated.ping(reg.host);
    expect(reads).toBe(2);
    await rotated.close();

    // Nothing better anywhere: one more read, then the refusal; the refused credential is not kept.
    reads = 0;
    const refused = client({ get: async () => (reads++, wrong) });
    await expect(refused.ping(reg.host)).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(reads).toBe(2);
    await expect(refused.ping(reg.host)).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    expect(reads).toBe(4);
    await refused.close();
  });

  it('a pull Secret fixed in its mounted volume (kubelet ..data swap) works at the next request', async () => {
    const secret = join(await tempDir(), 'registry-auth');
    await mountVolume(secret, { 'config.json': dockerConfig(reg.host, reg.username!, 'wrong') });
    const home = await tempDir();
    const store = new CredentialStore({ configDir: join(home, 'own'), dockerConfigDir: join(home, 'docker'), extraFiles: [join(secret, 'config.json')], env: {} });
    const c = client(credentialsFor(defaultConfig().registry, store));
    await expect(c.ping(reg.host)).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    await updateVolume(secret, { 'config.json': dockerConfig(reg.host, reg.username!, reg.password!) });
    await c.ping(reg.host);

    // A change the watcher reports (CredentialStore.changed) drops what was looked up before, even
    // credentials that still work: a revoked key must stop being used.
    await updateVolume(secret, { 'config.json': dockerConfig(reg.host, reg.username!, 'revoked') });
    await c.ping(reg.host);
    store.changed();
    await expect(c.ping(reg.host)).rejects.toMatchObject({ code: 'AUTH_REQUIRED' });
    await c.close();
  });
});

describe('registry client: a rotated CA bundle (TLS registry)', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry({ tls: true });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('reloadTls: the next requests trust the new bundle, a blob in flight finishes on the old connection', async () => {
    const right = await readFile(reg.caFile!, 'utf8');
    const other = await readFile((await makeTlsFiles(await tempDir())).caFile, 'utf8');
    const caDir = join(await tempDir(), 'registry-ca');
    await mountVolume(caDir, { 'ca.pem': right });
    const caFile = join(caDir, 'ca.pem');
    const client = new RegistryClient({ hostSettings: () => ({ caFile }), retry: { attempts: 1 } });
    const repo = { registry: reg.host, repository: 'rotation/blob' };
    const data = randomBytes(32 * 1024 * 1024);
    const blob = bufferBlob(data);
    await client.pushBlob(repo, blob);

    // Start a download and take its first bytes, then rotate the CA to one that does not sign the
    // registry's certificate.
    const stream = await client.openBlob(repo, blob);
    let received = 0;
    let rotated: Promise<string[]> | undefined;
    await pipeline(
      stream,
      new Writable({
        write(chunk: Buffer, _enc, done) {
          received += chunk.length;
          if (rotated === undefined) {
            stream.pause();
            rotated = updateVolume(caDir, { 'ca.pem': other }).then(() => client.transport.reloadTls([caFile]));
            void rotated.then(() => stream.resume(), done);
            done();
            return;
          }
          done();
        },
      }),
    );
    expect(await rotated).toEqual([reg.host]);
    // The stream verified size and digest to the end: the transfer finished on the old dispatcher.
    expect(received).toBe(data.length);

    // The next request opens a new connection that trusts the new bundle, and fails on the certificate.
    await expect(client.resolve({ ...repo, tag: 'none' })).rejects.toMatchObject({ code: 'NETWORK' });
    await updateVolume(caDir, { 'ca.pem': right });
    expect(client.transport.reloadTls([caFile])).toEqual([reg.host]);
    await client.blobExists(repo, blob.digest).then((exists) => expect(exists).toBe(true));
    // A bundle nobody here trusts changes nothing.
    expect(client.transport.reloadTls(['/nowhere/ca.pem'])).toEqual([]);
    await client.close();
  });
});
