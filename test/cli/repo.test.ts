/**
 * `repo push|pull|login|logout` end to end: the built CLI against a real registry in each variant.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobPath, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { CLI, cliEnv, runCli, ROOT } from '../helpers/cli.js';

const RULES = join(ROOT, 'test/fixtures/falco_rules.yaml');

async function pluginFiles(): Promise<{ amd64: string; arm64: string; bytes: Record<string, Buffer> }> {
  const dir = await mkdtemp(join(tmpdir(), 'plugin-src-'));
  await mkdir(join(dir, 'amd64'));
  await mkdir(join(dir, 'arm64'));
  const bytes = { amd64: Buffer.from('\x7fELF amd64 build\n'), arm64: Buffer.from('\x7fELF arm64 build\n') };
  await writeFile(join(dir, 'amd64/libk8saudit.so'), bytes.amd64, { mode: 0o755 });
  await writeFile(join(dir, 'arm64/libk8saudit.so'), bytes.arm64, { mode: 0o755 });
  return { amd64: join(dir, 'amd64/libk8saudit.so'), arm64: join(dir, 'arm64/libk8saudit.so'), bytes };
}

describe.each([
  { name: 'anonymous', opts: {} },
  { name: 'htpasswd', opts: { auth: 'htpasswd' as const } },
  { name: 'TLS (--ca-file)', opts: { tls: true } },
  { name: 'token auth', opts: { auth: 'token' as const } },
])('repo push/pull round trip, $name registry', ({ opts }) => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let flags: string[];
  beforeAll(async () => {
    reg = await startRegistry(opts);
    env = await cliEnv();
    flags = reg.caFile ? ['--ca-file', reg.caFile] : ['--plain-http'];
    if (reg.username) {
      const login = await runCli(['repo', 'login', reg.host, '-u', reg.username, '--password-stdin', ...flags], { env, input: `${reg.password}\n` });
      expect(login.stderr).toBe('');
      expect(login.code).toBe(0);
    }
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('pushes a rules file and pulls back the same bytes', async () => {
    const push = await runCli(['repo', 'push', `${reg.host}/rules/falco`, RULES, '--type', 'rulesfile', '--version', '1.2.3', '--add-floating-tags', '-o', 'json', ...flags], { env });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    const pushed = JSON.parse(push.stdout) as { digest: string; tags: string[] };
    expect(pushed.tags).toEqual(['1.2.3', '1.2', '1', 'latest']);
    expect(pushed.digest).toMatch(/^sha256:[a-f0-9]{64}$/);

    const dest = await mkdtemp(join(tmpdir(), 'pull-'));
    const pull = await runCli(['repo', 'pull', `${reg.host}/rules/falco:1`, '--dest', dest, '-o', 'json', ...flags], { env });
    expect(pull.code).toBe(0);
    const pulled = JSON.parse(pull.stdout) as { digest: string; version: string; type: string; files: string[] }[];
    expect(pulled).toHaveLength(1); // one reference: an array of one, the same shape as for several
    expect(pulled[0]).toMatchObject({ digest: pushed.digest, version: '1.2.3', type: 'rulesfile', files: ['falco_rules.yaml'] });
    expect((await readFile(join(dest, 'falco_rules.yaml'))).equals(await readFile(RULES))).toBe(true);
    expect((await stat(join(dest, 'falco_rules.yaml'))).mode & 0o777).toBe(0o644);
  });

  it('records --annotation-source (falcoctl) and --annotation in the manifest', async () => {
    const push = await runCli(['repo', 'push', `${reg.host}/rules/annotated`, RULES, '--type', 'rulesfile', '--version', '1.0.0',
      '--annotation-source', 'https://github.com/acme/rules', '--annotation', 'org.opencontainers.image.description=Acme rules', ...flags], { env });
    expect(push.code, push.stderr).toBe(0);
    const manifest = await runCli(['artifact', 'manifest', `${reg.host}/rules/annotated:1.0.0`, ...flags], { env });
    expect(JSON.parse(manifest.stdout).annotations).toMatchObject({
      'org.opencontainers.image.source': 'https://github.com/acme/rules',
      'org.opencontainers.image.description': 'Acme rules',
      'org.opencontainers.image.version': '1.0.0',
    });
  });

  it('pushes a two-platform plugin and pulls each platform', async () => {
    const p = await pluginFiles();
    const push = await runCli(
      ['repo', 'push', `${reg.host}/plugins/k8saudit:0.7.0`, p.amd64, p.arm64, '--type', 'plugin', '--version', '0.7.0',
        '--platform', 'linux/amd64', '--platform', 'linux/arm64', ...flags],
      { env },
    );
    expect(push.code).toBe(0);
    expect(push.stdout).toMatch(new RegExp(`^pushed ${reg.host}/plugins/k8saudit:0.7.0@sha256:[a-f0-9]{64}`));
    for (const arch of ['amd64', 'arm64'] as const) {
      const dest = await mkdtemp(join(tmpdir(), 'pull-'));
      const pull = await runCli(['repo', 'pull', `${reg.host}/plugins/k8saudit:0.7.0`, '--dest', dest, '--platform', `linux/${arch}`, ...flags], { env });
      expect(pull.code).toBe(0);
      expect(await readFile(join(dest, 'libk8saudit.so'))).toEqual(p.bytes[arch]);
      expect((await stat(join(dest, 'libk8saudit.so'))).mode & 0o777).toBe(0o755);
    }
    const missing = await runCli(['repo', 'pull', `${reg.host}/plugins/k8saudit:0.7.0`, '--platform', 'linux/s390x', ...flags], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no build for linux/s390x; it has: linux/amd64, linux/arm64');
  });
});

describe('repo commands: errors and credentials', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('tells the user to log in on 401, and never prints the password', async () => {
    const env = await cliEnv();
    const push = await runCli(['repo', 'push', `${reg.host}/rules/x`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--plain-http'], { env });
    expect(push.code).toBe(1);
    expect(push.stderr).toContain(`hint: run \`diginfractl repo login ${reg.host}\``);

    const bad = await runCli(['repo', 'login', reg.host, '-u', reg.username!, '--password-stdin', '--plain-http'], { env, input: 'not-the-password\n' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('rejected the username or password');
    expect(bad.stderr + bad.stdout).not.toContain('not-the-password');
    await expect(stat(join(env.XDG_CONFIG_HOME!, 'diginfractl/config.json'))).rejects.toThrow();

    const good = await runCli(['repo', 'login', reg.host, '-u', reg.username!, '--password-stdin', '--plain-http'], { env, input: `${reg.password}\n` });
    expect(good.code).toBe(0);
    const file = join(env.XDG_CONFIG_HOME!, 'diginfractl/config.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(saved.auths[reg.host]!.auth, 'base64').toString()).toBe(`${reg.username}:${reg.password}`);
    expect(good.stdout + good.stderr).not.toContain(reg.password!);

    const push2 = await runCli(['repo', 'push', `${reg.host}/rules/x`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--plain-http', '--log-level', 'trace'], { env });
    expect(push2.code).toBe(0);
    expect(push2.stdout + push2.stderr).not.toContain(reg.password!);

    const logout = await runCli(['repo', 'logout', reg.host], { env });
    expect(logout.code).toBe(0);
    expect(logout.stdout).toContain(`removed credentials for ${reg.host}`);
    const after = await runCli(['repo', 'pull', `${reg.host}/rules/x:1.0.0`, '--plain-http'], { env });
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('repo login');
  });

  it('uses credentials from docker config.json', async () => {
    const env = await cliEnv();
    await mkdir(env.DOCKER_CONFIG!, { recursive: true });
    await writeFile(
      join(env.DOCKER_CONFIG!, 'config.json'),
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }),
    );
    const push = await runCli(['repo', 'push', `${reg.host}/rules/docker-creds`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--plain-http'], { env });
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
  });

  it('asks a docker credential helper once per registry, not once per request', async () => {
    const env = await cliEnv();
    const bin = join(env.HOME, 'bin');
    await mkdir(bin, { recursive: true });
    const calls = join(env.HOME, 'helper-calls');
    await writeFile(
      join(bin, 'docker-credential-counting'),
      `#!/bin/sh\nread server\necho "$server" >> ${calls}\necho '{"Username":"${reg.username}","Secret":"${reg.password}"}'\n`,
      { mode: 0o755 },
    );
    await mkdir(env.DOCKER_CONFIG!, { recursive: true });
    await writeFile(join(env.DOCKER_CONFIG!, 'config.json'), JSON.stringify({ credsStore: 'counting' }));
    const p = await pluginFiles();
    const push = await runCli(
      ['repo', 'push', `${reg.host}/plugins/helper:1.0.0`, p.amd64, p.arm64, '--type', 'plugin', '--version', '1.0.0', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--plain-http'],
      { env: { ...env, PATH: `${bin}:${env.PATH}` } },
    );
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    expect((await readFile(calls, 'utf8')).trim().split('\n')).toEqual([reg.host]);
  });

  it('reports usage errors with exit code 2', async () => {
    const env = await cliEnv();
    const badRef = await runCli(['repo', 'pull', 'localhost:5000/Upper/Case'], { env });
    expect(badRef.code).toBe(2);
    expect(badRef.stderr).toContain('invalid reference "localhost:5000/Upper/Case"');
    const badVersion = await runCli(['repo', 'push', `${reg.host}/rules/x`, RULES, '--type', 'rulesfile', '--version', 'v1', '--plain-http'], { env });
    expect(badVersion.code).toBe(2);
    expect(badVersion.stderr).toContain('strict semver');
    const missingFlag = await runCli(['repo', 'push', `${reg.host}/rules/x`, RULES], { env });
    expect(missingFlag.code).toBe(2);
    expect(missingFlag.stderr).toContain('--type');
    const platforms = await runCli(['repo', 'push', `${reg.host}/rules/x`, RULES, '--type', 'plugin', '--version', '1.0.0', '--platform', 'linux/amd64', '--platform', 'linux/arm64'], { env });
    expect(platforms.code).toBe(2);
    expect(platforms.stderr).toContain('one platform per file');
  });
});

describe('repo pull safety', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    reg = await startRegistry();
    env = await cliEnv();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('refuses a tampered layer and leaves the destination as it was', async () => {
    const src = await mkdtemp(join(tmpdir(), 'src-'));
    await writeFile(join(src, 'rules.yaml'), '- list: new\n  items: [a]\n');
    const push = await runCli(['repo', 'push', `${reg.host}/rules/tamper`, join(src, 'rules.yaml'), '--type', 'rulesfile', '--version', '1.0.0', '--plain-http', '-o', 'json'], { env });
    expect(push.code).toBe(0);
    const manifest = JSON.parse((await runCli(['repo', 'pull', `${reg.host}/rules/tamper:1.0.0`, '--plain-http', '--dest', await mkdtemp(join(tmpdir(), 'ok-')), '-o', 'json'], { env })).stdout)[0] as { manifestDigest: string };
    expect(manifest.manifestDigest).toMatch(/^sha256:/);
    // Corrupt the layer blob in the registry's storage.
    const blobs = join(reg.storageDir, 'docker/registry/v2/blobs/sha256');
    let layer: string | undefined;
    for (const prefix of await readdir(blobs)) {
      for (const hex of await readdir(join(blobs, prefix))) {
        const data = await readFile(join(blobs, prefix, hex, 'data'));
        if (data[0] === 0x1f && data[1] === 0x8b) layer = `sha256:${hex}`;
      }
    }
    const path = blobPath(reg, layer!);
    const data = await readFile(path);
    data[data.length - 12] = data[data.length - 12]! ^ 0xff;
    await writeFile(path, data);

    const dest = await mkdtemp(join(tmpdir(), 'dest-'));
    await writeFile(join(dest, 'rules.yaml'), 'old content\n');
    const pull = await runCli(['repo', 'pull', `${reg.host}/rules/tamper:1.0.0`, '--plain-http', '--dest', dest], { env });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toMatch(/DIGEST_MISMATCH|has digest|not a valid tar/);
    expect(await readdir(dest)).toEqual(['rules.yaml']);
    expect(await readFile(join(dest, 'rules.yaml'), 'utf8')).toBe('old content\n');
  });

  it('says which tag is missing', async () => {
    const pull = await runCli(['repo', 'pull', `${reg.host}/rules/none:9.9.9`, '--plain-http'], { env });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain(`manifest not found: ${reg.host}/rules/none:9.9.9`);
  });

  it('says when nothing listens', async () => {
    const pull = await runCli(['repo', 'pull', '127.0.0.1:9/rules/none:1', '--plain-http'], { env });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain('cannot reach 127.0.0.1:9');
  });
});

describe('repo pull on a terminal', () => {
  it('shows a byte counter per layer on a TTY (script(1) provides one), and nothing on a pipe', async () => {
    const reg = await startRegistry();
    try {
      const env = await cliEnv({ PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` });
      const big = join(await mkdtemp(join(tmpdir(), 'tty-')), 'big.bin');
      await writeFile(big, Buffer.alloc(3 * 1024 * 1024, 7));
      expect((await runCli(['repo', 'push', `${reg.host}/assets/big:1.0.0`, big, '--type', 'asset', '--version', '1.0.0', '--plain-http'], { env })).code).toBe(0);
      const dest = await mkdtemp(join(tmpdir(), 'tty-pull-'));
      const cmd = `${CLI} repo pull ${reg.host}/assets/big:1.0.0 --dest ${dest} --plain-http`;
      const out = await new Promise<string>((ok, fail) =>
        execFile('script', ['-qec', cmd, '/dev/null'], { env }, (err, stdout) => (err ? fail(err) : ok(stdout))),
      );
      expect(out).toMatch(/ {2}big 1\.0\.0 [a-f0-9]{12} 0 B \/ [\d.]+ KiB/);
      expect(out).toMatch(/\r {2}big 1\.0\.0 [a-f0-9]{12} ([\d.]+) KiB \/ \1 KiB done/);
      expect(out).toContain(`pulled ${reg.host}/assets/big:1.0.0@sha256:`);
      const piped = await runCli(['repo', 'pull', `${reg.host}/assets/big:1.0.0`, '--dest', dest, '--plain-http'], { env });
      expect(piped.code).toBe(0);
      expect(piped.stderr).toBe('');

      // A tampered layer never shows as done, and the error starts a line of its own.
      const manifest = (await (await fetch(`${reg.url}/v2/assets/big/manifests/1.0.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: { digest: string }[] };
      const data = blobPath(reg, manifest.layers[0]!.digest);
      const bytes = await readFile(data);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
      await writeFile(data, bytes);
      const badDest = await mkdtemp(join(tmpdir(), 'tty-bad-'));
      const tampered = await new Promise<string>((ok) => execFile('script', ['-qec', cmd.replace(dest, badDest), '/dev/null'], { env }, (_err, stdout) => ok(stdout)));
      expect(tampered).not.toContain(' done');
      expect(tampered).toMatch(/\n+error: .*digest/);
    } finally {
      await reg.stop();
    }
  });
});

describe('TLS trust', () => {
  it('adds --ca-file to the CAs Node already trusts instead of replacing them', async () => {
    const own = await startRegistry({ tls: true });
    const other = await startRegistry({ tls: true });
    try {
      // `other` is trusted the way a public registry is (Node's default store, here via NODE_EXTRA_CA_CERTS);
      // --ca-file adds `own`'s private CA. Both must verify in one run of the CLI.
      const env = await cliEnv({ NODE_EXTRA_CA_CERTS: other.caFile! });
      const push = await runCli(['repo', 'push', `${other.host}/rules/public`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--ca-file', own.caFile!], { env });
      expect(push.stderr).toBe('');
      expect(push.code).toBe(0);
      const pushOwn = await runCli(['repo', 'push', `${own.host}/rules/private`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--ca-file', own.caFile!], { env });
      expect(pushOwn.code).toBe(0);
      const untrusted = await runCli(['repo', 'pull', `${own.host}/rules/private:1.0.0`, '--dest', await mkdtemp(join(tmpdir(), 'x-'))], { env });
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr).toContain('--ca-file');
    } finally {
      await own.stop();
      await other.stop();
    }
  });

  it("pushes and pulls over HTTP/2 when the TLS registry offers it (the bundle loads undici's HTTP/2 client on first use)", async () => {
    const reg = await startRegistry({ tls: true });
    try {
      // NODE_DEBUG=http2 makes Node log its HTTP/2 sessions on stderr: proof that h2 was negotiated and used.
      const env = await cliEnv({ NODE_DEBUG: 'http2' });
      const push = await runCli(['repo', 'push', `${reg.host}/rules/h2`, RULES, '--type', 'rulesfile', '--version', '1.0.0', '--ca-file', reg.caFile!], { env });
      expect(push.code, push.stderr).toBe(0);
      const dest = await mkdtemp(join(tmpdir(), 'h2-'));
      const pull = await runCli(['repo', 'pull', `${reg.host}/rules/h2:1.0.0`, '--dest', dest, '--ca-file', reg.caFile!], { env });
      expect(pull.code, pull.stderr).toBe(0);
      expect(pull.stderr).toMatch(/HTTP2 \d+: Http2Session client/);
      expect((await readFile(join(dest, 'falco_rules.yaml'))).equals(await readFile(RULES))).toBe(true);
    } finally {
      await reg.stop();
    }
  });

  it('says when the credentials of an open registry could not be checked', async () => {
    const open = await startRegistry();
    try {
      const env = await cliEnv();
      const login = await runCli(['repo', 'login', open.host, '-u', 'bob', '--password-stdin', '--plain-http'], { env, input: 'whatever\n' });
      expect(login.code).toBe(0);
      expect(login.stdout).toContain('not verified');
      expect(login.stderr).toContain('admits anonymous access');
    } finally {
      await open.stop();
    }
  });
});
