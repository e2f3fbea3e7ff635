import { describe, expect, it } from 'vitest';
import { applySectionFlags, fileSources } from '../../src/config/layers.js';
import { checkConfig } from '../../src/config/validate.js';
import { errorThrownBy } from '../helpers/errors.js';

function fromFile(raw: unknown) {
  const { config, present } = checkConfig(raw, '/x.yaml');
  return { config, sources: fileSources(present) };
}

/** The message of the USAGE error `fn` throws. */
function usage(fn: () => unknown): string {
  const err = errorThrownBy(fn);
  expect(err.code).toBe('USAGE');
  return err.message;
}

describe('flags of artifact install and artifact follow over their config section', () => {
  it('sets the install keys of the same name, leaves follow alone, and adds --dir to install.dirs', () => {
    const file = fromFile({ install: { rulesfilesDir: '/file/rules', dirs: { asset: '/file/assets', extra: '/file/extra' } } });
    const { config, sources } = applySectionFlags(file, 'install', {
      rulesfilesDir: '/flag/rules',
      resolveDeps: false,
      allowedTypes: 'rulesfile,plugin',
      platform: 'linux/arm/v7',
      engineVersion: '0.40.0',
      lockfile: '/flag/lock',
      dir: ['asset=/flag/assets'],
    });
    expect(config.install).toMatchObject({
      rulesfilesDir: '/flag/rules',
      resolveDeps: false,
      allowedTypes: ['rulesfile', 'plugin'],
      platform: 'linux/arm/v7',
      engineVersion: '0.40.0',
      lockfile: '/flag/lock',
      dirs: { asset: '/flag/assets', extra: '/file/extra' },
    });
    expect(config.follow).toEqual(file.config.follow);
    expect(sources).toMatchObject({ 'install.rulesfilesDir': 'flag', 'install.pluginsDir': 'default', 'install.dirs': 'flag', 'follow.rulesfilesDir': 'default' });
  });

  it('sets the follow keys of the same name', () => {
    const { config, sources } = applySectionFlags(fromFile({}), 'follow', {
      every: '10m',
      jitter: '0.2',
      stateDir: '/flag/state',
      engineVersionsUrl: 'https://example.com/versions.json',
      validateCmd: 'true',
      metricsAddr: ':9090',
      dir: ['asset=/flag/assets'],
    });
    expect(config.follow).toMatchObject({
      every: '10m',
      jitter: 0.2,
      stateDir: '/flag/state',
      engineVersionsUrl: 'https://example.com/versions.json',
      validateCmd: 'true',
      metricsAddr: ':9090',
      dirs: { asset: '/flag/assets' },
    });
    expect(config.install.dirs).toEqual({});
    expect(sources['follow.every']).toBe('flag');
  });

  it('names each bad flag as typed', () => {
    expect(usage(() => applySectionFlags(fromFile({}), 'install', { platform: 'arm64', engineVersion: 'new' }))).toBe(
      '--platform: "arm64" must be OS/ARCH such as linux/amd64 or linux/arm64\n--engine-version: "new" must be a version like 0.38.0',
    );
    expect(usage(() => applySectionFlags(fromFile({}), 'follow', { engineVersionsUrl: 'ftp://x', metricsAddr: 'x' }))).toMatch(/^--engine-versions-url: .*\n--metrics-addr: /);
    expect(usage(() => applySectionFlags(fromFile({}), 'follow', { dir: ['asset'] }))).toBe('--dir "asset" must be TYPE=DIR, e.g. --dir asset=/etc/diginfra/assets');
  });
});
