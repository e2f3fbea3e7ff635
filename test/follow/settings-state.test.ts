import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSources } from '../../src/config/layers.js';
import { defaultConfig } from '../../src/config/types.js';
import { effectiveFollow } from '../../src/follow/settings.js';
import { filesPresent, StateStore, stateKey } from '../../src/follow/state.js';
import { tempDir } from '../helpers/fs.js';

function loaded(edit: (c: ReturnType<typeof defaultConfig>) => void = () => undefined) {
  const config = defaultConfig();
  edit(config);
  return { config, sources: fileSources(new Set()) };
}

describe('follow settings', () => {
  it('defaults: every 6h, jitter 0.1, /var/lib/diginfractl, rulesfile only, no metrics', () => {
    const { settings, metricsAddr } = effectiveFollow(loaded(), {}, ['ghcr.io/a/b']);
    expect(settings).toMatchObject({
      refs: ['ghcr.io/a/b:latest'],
      schedule: { kind: 'every', intervalMs: 6 * 3_600_000 },
      jitter: 0.1,
      stateDir: '/var/lib/diginfractl',
      rulesfilesDir: '/etc/diginfra',
      installLockfiles: ['/etc/diginfra/diginfractl.lock'],
      allowedTypes: ['rulesfile'],
    });
    expect(metricsAddr).toBeUndefined();
    // install.lockfile is read first, then the lock file in the rules dir follow shares with the install.
    const custom = effectiveFollow(loaded((c) => void (c.install.lockfile = '/var/lib/diginfractl/install.lock')), {}, ['ghcr.io/a/b']);
    expect(custom.settings.installLockfiles).toEqual(['/var/lib/diginfractl/install.lock', '/etc/diginfra/diginfractl.lock']);
  });

  it('flags win over the file; refs come from follow.refs without REF arguments; duplicates collapse', () => {
    const l = loaded((c) => {
      c.follow.refs = ['ghcr.io/a/b', 'ghcr.io/a/b:latest', 'k8saudit-rules:1'];
      c.follow.cron = '@hourly';
      c.follow.engineVersionsUrl = 'https://example.test/versions';
    });
    const a = effectiveFollow(l, {}, []);
    expect(a.settings.refs).toEqual(['ghcr.io/a/b:latest', 'k8saudit-rules:1']);
    expect(a.settings.schedule).toEqual({ kind: 'cron', expression: '@hourly' });
    expect(a.settings.engineVersionsUrl).toBe('https://example.test/versions');
    const b = effectiveFollow(l, { every: '10s', jitter: '0', engineVersion: '0.40.0', allowedTypes: 'rulesfile,plugin', metricsAddr: '0.0.0.0:9376', stateDir: 'rel/state' }, ['ghcr.io/x/y:1']);
    expect(b.settings.refs).toEqual(['ghcr.io/x/y:1']);
    expect(b.settings.schedule).toEqual({ kind: 'every', intervalMs: 10_000 });
    expect(b.settings.jitter).toBe(0);
    expect(b.settings.engineVersion).toBe('0.40.0');
    expect(b.settings.engineVersionsUrl).toBeUndefined();
    expect(b.settings.allowedTypes).toEqual(['rulesfile', 'plugin']);
    expect(b.settings.stateDir).toBe(join(process.cwd(), 'rel/state'));
    expect(b.metricsAddr).toBe('0.0.0.0:9376');
  });

  it('refuses conflicting or bad flags', () => {
    expect(() => effectiveFollow(loaded(), { every: '1s', cron: '@daily' }, [])).toThrow(/--every or --cron/);
    expect(() => effectiveFollow(loaded(), { engineVersion: '0.1.0', engineVersionsUrl: 'http://x' }, [])).toThrow(/not both/);
    expect(() => effectiveFollow(loaded(), { every: 'soon' }, [])).toThrow(/--every/);
    expect(() => effectiveFollow(loaded(), { jitter: '2' }, [])).toThrow(/--jitter/);
    expect(() => effectiveFollow(loaded(), { metricsAddr: 'nope' }, [])).toThrow(/--metrics-addr/);
    expect(() => effectiveFollow(loaded(), {}, ['Bad Ref'])).toThrow(/invalid reference/);
  });
});

describe('state store', () => {
  it('round-trips state atomically, keeps version copies, prunes, lists refs', async () => {
    const dir = await tempDir();
    const store = new StateStore(dir);
    const ref = 'ghcr.io/a/b:1';
    expect(await store.read(ref)).toEqual({ stateVersion: 1, ref });
    expect(stateKey(ref)).toMatch(/^ghcr.io_a_b_1-[0-9a-f]{12}$/);
    expect(stateKey('../../etc')).not.toContain('/');
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    await writeFile(join(src, 'a.yaml'), 'a');
    await writeFile(join(src, 'sub/b.yaml'), 'b');
    const d1 = `sha256:${'1'.repeat(64)}`;
    const d2 = `sha256:${'2'.repeat(64)}`;
    const d3 = `sha256:${'3'.repeat(64)}`;
    for (const d of [d1, d2, d3]) await store.saveVersion(ref, d, src, ['a.yaml', 'sub/b.yaml']);
    expect(await store.hasVersion(ref, d1)).toBe(true);
    expect(await readFile(join(store.versionDir(ref, d2), 'sub/b.yaml'), 'utf8')).toBe('b');
    await store.pruneVersions(ref, [d2, d3]);
    expect(await store.hasVersion(ref, d1)).toBe(false);
    expect(await store.hasVersion(ref, d3)).toBe(true);
    const installed = { digest: d3, manifestDigest: d3, name: 'b', version: '1.0.0', type: 'rulesfile', dir: src, files: ['a.yaml'], installedAt: 'now' };
    await store.write({ stateVersion: 1, ref, current: installed });
    expect((await store.read(ref)).current).toEqual(installed);
    expect(await store.refs()).toEqual([ref]);
    await writeFile(store.statePath(ref), '{ torn');
    expect(await store.read(ref)).toEqual({ stateVersion: 1, ref });
    expect(await filesPresent(src, ['a.yaml', 'sub/b.yaml'])).toBe(true);
    expect(await filesPresent(src, ['a.yaml', 'gone.yaml'])).toBe(false);
    expect(await filesPresent(src, ['../src/a.yaml'])).toBe(false);
    expect(await filesPresent(src, [])).toBe(false);
  });
});
