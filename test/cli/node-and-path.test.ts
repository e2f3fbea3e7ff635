/**
 * How a new user gets `diginfractl` on PATH (README, "Getting diginfractl on your PATH"), done as the
 * README says from this checkout: a packed tarball installed with npm into a prefix, and a link to the
 * checkout (`npm install -g .`, what `npm link` does); each run with the Node 24 of node_modules first
 * on PATH. And the bin on an older Node (the machine's /usr/bin/node is 20): a clear refusal, not a
 * silent run.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fs.js';
import { CLI, NODE, requireCli, ROOT } from '../helpers/cli.js';

/** The machine's own Node, older than 24 here: what `#!/usr/bin/env node` finds first on a stock PATH. */
const OLD_NODE = '/usr/bin/node';

function run(file: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, cwd, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** PATH with the Node 24 of node_modules first, then the system's (npm, sh). */
const pathWithNode24 = `${dirname(NODE)}:${process.env.PATH ?? '/usr/bin:/bin'}`;

beforeAll(() => {
  requireCli('repo', ['push']);
  const old = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' });
  if (old.status !== 0 || !/^v(\d+)\./.test(old.stdout) || Number(/^v(\d+)\./.exec(old.stdout)![1]) >= 24) {
    throw new Error(`${OLD_NODE} should be a Node older than 24 for this test (it is: ${old.stdout.trim() || old.error?.message})`);
  }
});

describe('on a Node older than 24', () => {
  it('the bin says which Node it needs and which one it got, and exits 1 without running anything', async () => {
    const r = await run(OLD_NODE, [CLI, 'version'], { PATH: '/usr/bin:/bin', HOME: await tempDir() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: diginfractl needs Node\.js 24 or newer; this is Node\.js 20\.\d+\.\d+ \(\/usr\/bin\/node\)\n/);
    expect(r.stderr).toContain('hint: put a Node 24 first on PATH');
  });

  it('started through its shebang with the old Node first on PATH (`env node`): the same refusal', async () => {
    const r = await run(CLI, ['--version'], { PATH: '/usr/bin:/bin', HOME: await tempDir() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: diginfractl needs Node.js 24 or newer; this is Node.js 20.');
  });
});

describe('getting it on PATH, as the README says', () => {
  it('npm pack, then npm install -g of the tarball into a prefix: PREFIX/bin/diginfractl runs', async () => {
    const work = await tempDir('diginfractl-pack-');
    const env = { ...process.env, PATH: pathWithNode24, HOME: work, npm_config_cache: join(process.env.HOME ?? work, '.npm'), npm_config_update_notifier: 'false' };
    const pack = await run('npm', ['pack', '--pack-destination', work], env);
    expect(pack.code, pack.stderr).toBe(0);
    const [tarball] = (await readdir(work)).filter((f) => f.endsWith('.tgz'));
    expect(tarball).toBe('diginfractl-0.1.0.tgz');
    const prefix = join(work, 'prefix');
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball!)], env);
    expect(install.code, install.stderr).toBe(0);
    const version = await run(join(prefix, 'bin', 'diginfractl'), ['--version'], { PATH: pathWithNode24, HOME: work });
    expect(version).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' });
    // A command that logs: pino, required lazily, comes from the installed copy's dependencies.
    const config = join(work, 'falcoctl.yaml');
    await writeFile(config, 'artifact:\n  noVerify: true\n');
    const validate = await run(join(prefix, 'bin', 'diginfractl'), ['config', 'validate', config, '-o', 'json'], { PATH: pathWithNode24, HOME: work });
    expect(validate.code, validate.stderr).toBe(0);
    expect(JSON.parse(validate.stdout)).toMatchObject({ valid: true });
    expect(JSON.parse(validate.stderr.trim())).toMatchObject({ level: 40, msg: expect.stringContaining('artifact.noVerify') });
  }, 180_000);

  it('npm install -g . (a link to this checkout, as npm link makes): PREFIX/bin/diginfractl runs', async () => {
    const work = await tempDir('diginfractl-link-');
    const prefix = join(work, 'prefix');
    const env = { ...process.env, PATH: pathWithNode24, HOME: work, npm_config_cache: join(process.env.HOME ?? work, '.npm'), npm_config_update_notifier: 'false' };
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', '.'], env);
    expect(install.code, install.stderr).toBe(0);
    const version = await run(join(prefix, 'bin', 'diginfractl'), ['version', '-o', 'json'], { PATH: pathWithNode24, HOME: work });
    expect(version).toEqual({ code: 0, stdout: '{\n  "version": "0.1.0"\n}\n', stderr: '' });
  }, 60_000);
});
