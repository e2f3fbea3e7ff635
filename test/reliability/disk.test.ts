/**
 * A full disk and what a crashed install leaves behind, with a real filesystem: a 64 KiB tmpfs mounted
 * as the rules dir (the tests run as root, as CI does), the built CLI against a real registry.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIR_LOCK_NAME } from '../../src/install/dir-lock.js';
import type { RegistryClient } from '../../src/registry/client.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor } from '../install/setup.js';
import { pushRules } from '../helpers/push.js';
import { tempDir } from '../helpers/fs.js';

const RULES = '- list: small\n  items: []\n';

/** Mounts a tmpfs of `size` at `dir`; the reason it could not, or undefined. */
function mountTmpfs(dir: string, size: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `mount -t tmpfs refused: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`;
  }
}

/** Writes zeros into `file` until the filesystem is full. */
async function fill(file: string): Promise<void> {
  await writeFile(file, Buffer.alloc(1024 * 1024)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOSPC') throw err;
  });
}

const work = await tempDir('diginfractl-disk-');
const small = join(work, 'small');
await mkdir(small);
const unmounted = mountTmpfs(small, '64k');
const cacheDisk = join(work, 'cache');
await mkdir(cacheDisk);
const cacheUnmounted = unmounted ?? mountTmpfs(cacheDisk, '1m');

let reg: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  reg = await startRegistry();
  client = clientFor(reg);
  await pushRules(client, `${reg.host}/acme/small-rules:1.0.0`, '1.0.0', { name: 'small-rules', content: RULES, fileName: 'small.yaml' });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
  if (unmounted === undefined) execFileSync('umount', [small]);
  if (cacheUnmounted === undefined) execFileSync('umount', [cacheDisk]);
  await rm(work, { recursive: true, force: true });
});

async function install(env: NodeJS.ProcessEnv, rulesDir: string, lockTimeout: string) {
  const started = Date.now();
  const r = await runCli(
    ['artifact', 'install', `${reg.host}/acme/small-rules:1.0.0`, '--rulesfiles-dir', rulesDir, '--plugins-dir', join(work, 'plugins'), '--plain-http', '--lock-timeout', lockTimeout],
    { env },
  );
  return { ...r, seconds: (Date.now() - started) / 1000 };
}

describe.skipIf(unmounted !== undefined)(`a full disk${unmounted ? ` (skipped: ${unmounted})` : ''}`, () => {
  it('an install onto a full disk fails saying so and leaves no lock; once space is freed the next install runs at once', async () => {
    const env = await cliEnv();
    await fill(join(small, 'filler'));

    const full = await install(env, small, '20');
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(`cannot create the install lock ${join(small, DIR_LOCK_NAME)}`);
    expect(full.stderr).toContain('no space left on device');
    // Nothing of the failed run is left: no lock, no temp file.
    expect(await readdir(small)).toEqual(['filler']);

    await rm(join(small, 'filler'));
    const next = await install(env, small, '20');
    expect(next.stderr).not.toContain('locked by another install');
    expect(next.code).toBe(0);
    expect(next.seconds).toBeLessThan(10);
    expect((await readdir(small)).sort()).toEqual(['diginfractl.lock', 'small.yaml']);
  });
});

describe.skipIf(cacheUnmounted !== undefined)(`a full cache disk${cacheUnmounted ? ` (skipped: ${cacheUnmounted})` : ''}`, () => {
  /** An index of `n` valid entries, about 120 bytes each. */
  const index = (n: number) =>
    Array.from({ length: n }, (_, i) => `- name: e${i}\n  type: plugin\n  registry: ghcr.io\n  repository: acme/e${i}\n  description: entry ${i}\n  keywords: [k]\n`).join('');

  it('index update of an index whose cache files do not fit fails saying so; the previous copy stays, whole, and no temp file is left', async () => {
    const env = await cliEnv({ XDG_CACHE_HOME: cacheDisk });
    await writeFile(env.DIGINFRACTL_CONFIG!, 'indexes: []\n');
    const file = join(work, 'index.yaml');
    await writeFile(file, index(2));
    expect((await runCli(['index', 'add', 'corp', file], { env })).code).toBe(0);
    const dir = join(cacheDisk, 'diginfractl', 'indexes');
    const snapshot = async () => {
      const out: Record<string, string> = {};
      for (const f of await readdir(dir)) out[f] = await readFile(join(dir, f), 'utf8');
      return out;
    };
    const before = await snapshot();

    // About 0.75 MB of YAML, and as much again for the cache files written while it is parsed: over 1 MiB.
    await writeFile(file, index(6000));
    const r = await runCli(['index', 'update', 'corp'], { env });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^corp\s+failed\s+-$/m);
    expect(r.stderr).toMatch(new RegExp(`^error: index "corp": cannot write the cached copy under ${dir}: cannot write ${dir}/corp\\.[a-z.]+: ENOSPC: no space left on device`, 'm'));
    expect(r.stderr).toContain('hint: check that the cache dir is writable and has free space');
    expect(await snapshot()).toEqual(before);

    const search = await runCli(['artifact', 'search', 'e1'], { env });
    expect(search.code, search.stderr).toBe(0);
    expect(search.stdout).toMatch(/^corp\s+e1\s+plugin\s+ghcr\.io\s+acme\/e1\s+entry 1$/m);
  });
});

describe('a lock file that holds no owner', () => {
  it.each([
    ['empty', ''],
    ['not JSON', '{"pid": 12'],
    ['JSON without an owner', '{"hello":"world"}'],
  ])('%s (left by a crash or a full disk): taken over at once, not after the 2-minute age limit', async (_label, content) => {
    const env = await cliEnv();
    const rules = join(env.HOME, 'rules');
    await mkdir(rules, { recursive: true });
    const lock = join(rules, DIR_LOCK_NAME);
    await writeFile(lock, content);
    const tenSecondsAgo = new Date(Date.now() - 10_000);
    await utimes(lock, tenSecondsAgo, tenSecondsAgo);

    const r = await install(env, rules, '20');
    expect(r.stderr).not.toContain('locked by another install');
    expect(r.code).toBe(0);
    expect(r.seconds).toBeLessThan(10);
    expect((await readdir(rules)).sort()).toEqual(['diginfractl.lock', 'small.yaml']);
  });

  it('an empty lock written this instant is taken over within a few seconds', async () => {
    const env = await cliEnv();
    const rules = join(env.HOME, 'rules');
    await mkdir(rules, { recursive: true });
    await writeFile(join(rules, DIR_LOCK_NAME), '');

    const r = await install(env, rules, '20');
    expect(r.code).toBe(0);
    expect(r.seconds).toBeLessThan(10);
  });
});
