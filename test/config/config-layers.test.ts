import { describe, expect, it } from 'vitest';
import { applyEnv, applyFlags, fileSources } from '../../src/config/layers.js';
import { checkConfig } from '../../src/config/validate.js';
import { defaultConfig } from '../../src/config/types.js';
import { isDiginfraError } from '../../src/errors.js';

function fromFile(raw: unknown) {
  const { config, present } = checkConfig(raw, '/x.yaml');
  return { config, sources: fileSources(present) };
}

describe('applyEnv', () => {
  it('overrides the file with DIGINFRACTL_<SECTION>_<KEY>: lists comma-separated, booleans true/false', () => {
    const base = fromFile({ install: { refs: ['a'], resolveDeps: true }, follow: { every: '6h' } });
    const { config, sources } = applyEnv(base.config, base.sources, {
      DIGINFRACTL_INSTALL_REFS: 'k8saudit:0.7, corp::rules ,ghcr.io/x/y:1',
      DIGINFRACTL_INSTALL_RESOLVE_DEPS: 'false',
      DIGINFRACTL_INSTALL_RULESFILES_DIR: '/env/rules',
      DIGINFRACTL_FOLLOW_EVERY: '10m',
      DIGINFRACTL_FOLLOW_JITTER: '0.5',
      DIGINFRACTL_REGISTRY_PLAIN_HTTP: 'localhost:5000,registry.local:8080',
      DIGINFRACTL_REGISTRY_CA_FILES: 'ghcr.io=/ca.pem,*=/all.pem',
      DIGINFRACTL_CACHE_DIR: '/cache',
    });
    expect(config.install.refs).toEqual(['k8saudit:0.7', 'corp::rules', 'ghcr.io/x/y:1']);
    expect(config.install.resolveDeps).toBe(false);
    expect(config.install.rulesfilesDir).toBe('/env/rules');
    expect(config.follow.every).toBe('10m');
    expect(config.follow.jitter).toBe(0.5);
    expect(config.registry.plainHttp).toEqual(['localhost:5000', 'registry.local:8080']);
    expect(config.registry.caFiles).toEqual({ 'ghcr.io': '/ca.pem', '*': '/all.pem' });
    expect(config.cacheDir).toBe('/cache');
    expect(sources['install.refs']).toBe('env');
    expect(sources['follow.every']).toBe('env');
    expect(sources['install.pluginsDir']).toBe('default');
    // the input is not changed
    expect(base.config.install.refs).toEqual(['a']);
    expect(base.sources['install.refs']).toBe('file');
  });

  it('reads indexes as name=url,... or falcoctl style name,url;...', () => {
    const d = defaultConfig();
    const s = fileSources(new Set());
    expect(applyEnv(d, s, { DIGINFRACTL_INDEXES: 'a=https://a/i.yaml,b=/tmp/b.yaml' }).config.indexes).toEqual([
      { name: 'a', url: 'https://a/i.yaml' },
      { name: 'b', url: '/tmp/b.yaml' },
    ]);
    expect(applyEnv(d, s, { DIGINFRACTL_INDEXES: 'a,https://a/i.yaml;b,https://b/i.yaml' }).config.indexes).toEqual([
      { name: 'a', url: 'https://a/i.yaml' },
      { name: 'b', url: 'https://b/i.yaml' },
    ]);
  });

  it('reads basic credentials as registry,user,password;... without ever echoing them', () => {
    const c = applyEnv(defaultConfig(), {}, { DIGINFRACTL_REGISTRY_AUTH_BASIC: 'ghcr.io,me,s3cret;quay.io,you,t0ps3cret' }).config;
    expect(c.registry.auth?.basic).toEqual([
      { registry: 'ghcr.io', user: 'me', password: 's3cret' },
      { registry: 'quay.io', user: 'you', password: 't0ps3cret' },
    ]);
    try {
      applyEnv(defaultConfig(), {}, { DIGINFRACTL_REGISTRY_AUTH_BASIC: 'ghcr.io,me-only-s3cret' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('environment variable DIGINFRACTL_REGISTRY_AUTH_BASIC: entries must be registry,user,password');
      expect((err as Error).message).not.toContain('s3cret');
    }
  });

  it('ignores empty variables and names every bad one', () => {
    expect(applyEnv(defaultConfig(), {}, { DIGINFRACTL_FOLLOW_EVERY: '' }).config.follow.every).toBe('6h');
    try {
      applyEnv(defaultConfig(), {}, { DIGINFRACTL_INSTALL_RESOLVE_DEPS: 'perhaps', DIGINFRACTL_FOLLOW_EVERY: 'often' });
      expect.unreachable();
    } catch (err) {
      expect(isDiginfraError(err, 'CONFIG_INVALID')).toBe(true);
      expect((err as Error).message).toBe(
        'environment variable DIGINFRACTL_INSTALL_RESOLVE_DEPS must be true or false, not "perhaps"\n' +
          'environment variable DIGINFRACTL_FOLLOW_EVERY: "often" is not a duration; use a number with a unit, like 6h, 30m or 90s',
      );
    }
  });
});

describe('applyFlags', () => {
  it('puts flags above env above file above defaults, recording sources', () => {
    const base = fromFile({ install: { rulesfilesDir: '/file' } });
    const env = applyEnv(base.config, base.sources, { DIGINFRACTL_INSTALL_RULESFILES_DIR: '/env', DIGINFRACTL_INSTALL_PLUGINS_DIR: '/env-plugins' });
    const { config, sources } = applyFlags(env.config, env.sources, {
      'install.rulesfilesDir': '/flag',
      'install.resolveDeps': false,
      'install.allowedTypes': 'rulesfile,plugin',
      'install.platform': undefined,
    });
    expect(config.install.rulesfilesDir).toBe('/flag');
    expect(config.install.pluginsDir).toBe('/env-plugins');
    expect(config.install.resolveDeps).toBe(false);
    expect(config.install.allowedTypes).toEqual(['rulesfile', 'plugin']);
    expect(sources).toMatchObject({
      'install.rulesfilesDir': 'flag',
      'install.pluginsDir': 'env',
      'install.resolveDeps': 'flag',
      'install.platform': 'default',
      'follow.rulesfilesDir': 'default',
    });
  });

  it('names the flag in a USAGE error', () => {
    try {
      applyFlags(defaultConfig(), {}, { 'follow.every': 'soon' }, { 'follow.every': '--every' });
      expect.unreachable();
    } catch (err) {
      expect(isDiginfraError(err, 'USAGE')).toBe(true);
      expect((err as Error).message).toBe('--every: "soon" is not a duration; use a number with a unit, like 6h, 30m or 90s');
    }
  });
});
