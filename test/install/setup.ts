/**
 * Shared setup of the install tests: a real registry with a rules file (the real falco_rules.yaml)
 * that depends on a two-platform plugin published beside it, and small generated "plugins".
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PushOptions } from '../../src/artifact/push.js';
import { BlobCache } from '../../src/content/index.js';
import { installArtifacts, type InstallOptions, type InstallResult } from '../../src/install/install.js';
import { lockfilePath } from '../../src/install/lockfile.js';
import type { LoadedIndex } from '../../src/indexes/types.js';
import type { RegistryClient } from '../../src/registry/index.js';
import type { Platform } from '../../src/platform/index.js';
import { tempDir, tempFile } from '../helpers/fs.js';
import { push, pushClient } from '../helpers/push.js';
import type { TestRegistry } from '../helpers/registry.js';

export const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
export const ARM64: Platform = { os: 'linux', architecture: 'arm64' };

export interface Counter {
  requests: { method: string; status: number | 'error' }[];
  reset(): void;
}

/** pushClient() for `reg`, counting its requests in `counter`. */
export function clientFor(reg: TestRegistry, counter?: Counter): RegistryClient {
  return pushClient(counter && ((i) => void counter.requests.push({ method: i.method, status: i.status })));
}

export function counter(): Counter {
  const c: Counter = {
    requests: [],
    reset() {
      c.requests.length = 0;
    },
  };
  return c;
}

/** A fake plugin: an ELF-looking header and bytes that name its version and platform. */
export function fakePlugin(name: string, version: string, platform: string): Buffer {
  return Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.from(`\n${name} ${version} ${platform}\n`)]);
}

/** Pushes plugin `name` at `version` for amd64 and arm64 under `host/repo`. */
export async function pushPlugin(client: RegistryClient, host: string, repo: string, name: string, version: string, extra: Partial<PushOptions> = {}): Promise<string> {
  const so = `lib${name}.so`;
  const amd = await tempFile(so, fakePlugin(name, version, 'linux/amd64'));
  const arm = await tempFile(so, fakePlugin(name, version, 'linux/arm64'));
  return push(client, `${host}/${repo}:${version}`, { type: 'plugin', version, name, files: [amd, arm], platforms: [AMD64, ARM64], ...extra });
}

export interface Dirs {
  rules: string;
  plugins: string;
  cache: string;
  lockfile: string;
}

export async function dirs(): Promise<Dirs> {
  const root = await tempDir('diginfractl-install-');
  const d = { rules: join(root, 'etc/diginfra'), plugins: join(root, 'usr/share/diginfra/plugins'), cache: join(root, 'cache') };
  return { ...d, lockfile: lockfilePath(d.rules) };
}

export async function install(
  client: RegistryClient,
  d: Dirs,
  refs: string[],
  opts: Partial<Omit<InstallOptions, 'session' | 'cache'>> & { platform?: Platform; indexes?: LoadedIndex[] } = {},
): Promise<InstallResult> {
  const { platform, indexes, ...rest } = opts;
  return installArtifacts({
    refs,
    session: { client, platform: platform ?? AMD64, indexes: async () => indexes ?? [] },
    cache: new BlobCache(d.cache),
    lockfile: d.lockfile,
    allowedTypes: [],
    resolveDeps: true,
    rulesfilesDir: d.rules,
    pluginsDir: d.plugins,
    lockTimeoutMs: 20_000,
    ...rest,
  });
}

/** Every file under `dir` with its bytes and mode (missing dir: empty), for before/after comparisons. */
export async function snapshot(dir: string): Promise<Record<string, { mode: number; sha: string }>> {
  const out: Record<string, { mode: number; sha: string }> = {};
  const walk = async (d: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) {
        out[`${rel}/`] = { mode: 0, sha: '' };
        await walk(join(d, e.name), rel);
      } else {
        const p = join(d, e.name);
        const { createHash } = await import('node:crypto');
        out[rel] = { mode: (await stat(p)).mode & 0o777, sha: createHash('sha256').update(await readFile(p)).digest('hex') };
      }
    }
  };
  await walk(dir, '');
  return out;
}

export async function seed(dir: string, name: string, content: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), content);
}

export async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}
