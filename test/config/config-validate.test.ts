import { describe, expect, it } from 'vitest';
import { checkConfig, validateConfig } from '../../src/config/validate.js';
import { defaultConfig } from '../../src/config/types.js';
import { KEYS, envName } from '../../src/config/keys.js';
import { parseDuration } from '../../src/config/checks.js';
import { isDiginfraError } from '../../src/errors.js';

const FILE = '/x.yaml';

function problems(raw: unknown): string {
  try {
    validateConfig(raw, FILE);
  } catch (err) {
    expect(isDiginfraError(err, 'CONFIG_INVALID')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('validateConfig', () => {
  it('gives the defaults for an empty file, with the default index "diginfra"', () => {
    expect(validateConfig(null, FILE)).toEqual(defaultConfig());
    expect(validateConfig({}, FILE).indexes).toEqual([{ name: 'diginfra', url: 'https://diginfra.github.io/diginfractl/index.yaml' }]);
  });

  it('takes every documented key', () => {
    const raw = {
      indexes: [{ name: 'corp', url: 'https://idx.example.com/index.yaml', added: '2025-01-01T00:00:00Z' }],
      registry: {
        plainHttp: ['localhost:5000'],
        insecureSkipTlsVerify: ['10.0.0.1:5000'],
        caFiles: { 'ghcr.io': '/etc/ca.pem', '*': '/etc/all.pem' },
        mirrors: { 'ghcr.io': 'mirror.local:5000' },
        authFile: '/root/.docker/config.json',
        auth: { basic: [{ registry: 'ghcr.io', user: 'u', password: 'p' }], gcp: [] },
      },
      install: {
        refs: ['k8saudit:0.7', 'corp::rules', 'ghcr.io/diginfra/rules@sha256:' + 'a'.repeat(64)],
        rulesfilesDir: '/r',
        pluginsDir: '/p',
        resolveDeps: false,
        allowedTypes: ['rulesfile'],
        platform: 'linux/arm64',
        engineVersion: '0.38.0',
        lockfile: '/var/lib/diginfractl/lock',
      },
      follow: {
        refs: ['rules:3'],
        every: '1h30m',
        cron: '*/5 * * * *',
        jitter: 0,
        rulesfilesDir: '/r',
        pluginsDir: '/p',
        stateDir: '/s',
        allowedTypes: ['rulesfile', 'plugin'],
        engineVersion: '0.38.0',
        engineVersionsUrl: 'http://localhost:8765/versions',
        validateCmd: 'diginfra --dry-run -r {file}',
        metricsAddr: ':9376',
      },
      cacheDir: '/var/cache/diginfractl',
    };
    const { config, present } = checkConfig(raw, FILE);
    expect(config.install.resolveDeps).toBe(false);
    expect(config.follow.every).toBe('1h30m');
    expect(config.registry.auth?.basic).toEqual([{ registry: 'ghcr.io', user: 'u', password: 'p' }]);
    expect(config.registry.auth?.oauth).toEqual([]);
    expect(config.cacheDir).toBe('/var/cache/diginfractl');
    expect(present.has('install.refs')).toBe(true);
    expect(present.has('registry.auth.oauth')).toBe(false);
  });

  it('names the file and the key path of a bad value', () => {
    expect(problems({ install: { resolveDeps: 'maybe' } })).toBe('config /x.yaml: install.resolveDeps must be true or false');
  });

  it('rejects unknown keys with a "did you mean" hint, at any depth', () => {
    expect(problems({ install: { rulesFilesDir: '/x' } })).toBe('config /x.yaml: unknown key "install.rulesFilesDir" (did you mean "install.rulesfilesDir"?)');
    expect(problems({ registy: {} })).toContain('unknown key "registy" (did you mean "registry"?)');
    expect(problems({ zzz: 1 })).toContain('unknown key "zzz"; the top level has indexes, cacheDir, cacheMaxAge, verify, registry, install, follow, artifact');
    expect(problems({ indexes: [{ name: 'a', url: '/x', nmae: 'b' }] })).toContain('indexes[0]: unknown key "nmae" (did you mean "name"?)');
  });

  it('reports every problem at once, one line each', () => {
    const msg = problems({
      install: { resolveDeps: 1, refs: ['Bad Ref'] },
      follow: { every: '6 hours', jitter: 3, metricsAddr: 'nope' },
      registry: { plainHttp: ['not a host'] },
      indexes: [{ name: 'a', url: 'ftp://x' }, { url: '/y' }],
    });
    const lines = msg.split('\n');
    expect(lines.every((l) => l.startsWith('config /x.yaml: '))).toBe(true);
    expect(msg).toContain('install.resolveDeps must be true or false');
    expect(msg).toContain('install.refs[0]: invalid reference "Bad Ref"');
    expect(msg).toContain('follow.every: "6 hours" is not a duration');
    expect(msg).toContain('follow.jitter must be between 0 and 1, not 3');
    expect(msg).toContain('follow.metricsAddr: "nope" must be [host]:port');
    expect(msg).toContain('registry.plainHttp[0]: "not a host" is not a host[:port]');
    expect(msg).toContain('indexes[0].url: "ftp://x" is not an https://, http://, gs://, s3:// or file:// URL');
    expect(msg).toContain('indexes[1]: missing "name"');
    expect(lines).toHaveLength(8);
  });

  it('refuses duplicate index names and credentials inside index URLs', () => {
    expect(problems({ indexes: [{ name: 'a', url: '/x' }, { name: 'a', url: '/y' }] })).toContain('indexes[1]: name "a" is already used by indexes[0]');
    expect(problems({ indexes: [{ name: 'a', url: 'https://u:p@h/x' }] })).toContain('indexes[0].url must not hold credentials');
  });

  it('never echoes a password in an error', () => {
    const msg = problems({ registry: { auth: { basic: [{ registry: 'ghcr.io', user: 'u', password: 123456789 }] } } });
    expect(msg).toContain('registry.auth.basic[0].password must be a string, not number');
    expect(msg).not.toContain('123456789');
  });

  it('rejects a file that is not a map', () => {
    expect(problems(['a'])).toContain('config /x.yaml: the file must be a YAML map of sections');
    expect(problems({ install: ['x'] })).toContain('install must be a map of keys');
  });

  it('treats null and "" of optional keys as unset (Helm renders them)', () => {
    const c = validateConfig({ follow: { cron: '', engineVersion: null }, install: { platform: '' } }, FILE);
    expect(c.follow.cron).toBeUndefined();
    expect(c.install.platform).toBeUndefined();
  });

  it('accepts the falcoctl layout (artifact.*) and maps it onto install/follow', () => {
    const { config, present, warnings } = checkConfig(
      {
        indexes: [{ name: 'falcosecurity', url: 'https://falcosecurity.github.io/falcoctl/index.yaml', backend: 'https' }],
        artifact: {
          allowedTypes: ['rulesfile', 'plugin'],
          install: { refs: ['falco-rules:3'], resolveDeps: true, rulesfilesDir: '/rulesfiles', pluginsDir: '/plugins', assetsDir: '/assets' },
          follow: { refs: ['falco-rules:3'], every: '6h', falcoversions: 'http://localhost:8765/versions', rulesfilesDir: '/rulesfiles', pluginsDir: '/plugins', tmpDir: '/tmp', assetsDir: '/assets' },
        },
        registry: { creds: { config: '/root/.docker/config.json' } },
      },
      FILE,
    );
    expect(config.install.refs).toEqual(['falco-rules:3']);
    expect(config.install.allowedTypes).toEqual(['rulesfile', 'plugin']);
    expect(config.follow.allowedTypes).toEqual(['rulesfile', 'plugin']);
    expect(config.follow.engineVersionsUrl).toBe('http://localhost:8765/versions');
    expect(config.follow.rulesfilesDir).toBe('/rulesfiles');
    expect(config.registry.authFile).toBe('/root/.docker/config.json');
    expect(present.has('follow.engineVersionsUrl')).toBe(true);
    // falcoctl's directory for its asset type: the asset entry of install.dirs and follow.dirs.
    expect(config.install.dirs).toEqual({ asset: '/assets' });
    expect(config.follow.dirs).toEqual({ asset: '/assets' });
    expect(present.has('install.dirs')).toBe(true);
    expect(warnings).toEqual(['config /x.yaml: artifact.follow.tmpDir is ignored: the follower stages files beside their destination, so no temp dir is needed']);
  });

  it('merges artifact.install.assetsDir into install.dirs whatever the order of sections, and refuses it set twice', () => {
    for (const raw of [
      { artifact: { install: { assetsDir: '/assets' } }, install: { dirs: { policy: '/policies' } } },
      { install: { dirs: { policy: '/policies' } }, artifact: { install: { assetsDir: '/assets' } } },
    ]) {
      expect(validateConfig(raw, FILE).install.dirs).toEqual({ policy: '/policies', asset: '/assets' });
    }
    expect(() => validateConfig({ artifact: { install: { assetsDir: '/a' } }, install: { dirs: { asset: '/b' } } }, FILE)).toThrow(
      'artifact.install.assetsDir and install.dirs.asset both set install.dirs.asset; keep one',
    );
    expect(() => validateConfig({ artifact: { follow: { assetsDir: '' } } }, FILE)).toThrow('artifact.follow.assetsDir must be a non-empty string');
  });

  it('lets a specific key win over artifact.allowedTypes, but refuses two keys for one value', () => {
    const c = validateConfig({ artifact: { allowedTypes: ['plugin'] }, follow: { allowedTypes: ['rulesfile'] } }, FILE);
    expect(c.follow.allowedTypes).toEqual(['rulesfile']);
    expect(c.install.allowedTypes).toEqual(['plugin']);
    expect(problems({ install: { refs: ['a'] }, artifact: { install: { refs: ['b'] } } })).toContain(
      'artifact.install.refs and install.refs both set install.refs; keep one',
    );
  });

  it('gives each list its own copy', () => {
    const c = validateConfig({ artifact: { allowedTypes: ['plugin'] } }, FILE);
    c.install.allowedTypes.push('x');
    expect(c.follow.allowedTypes).toEqual(['plugin']);
  });
});

describe('keys', () => {
  it('have DIGINFRACTL_<SECTION>_<KEY> names', () => {
    expect(envName('install.rulesfilesDir')).toBe('DIGINFRACTL_INSTALL_RULESFILES_DIR');
    expect(envName('registry.plainHttp')).toBe('DIGINFRACTL_REGISTRY_PLAIN_HTTP');
    expect(envName('follow.every')).toBe('DIGINFRACTL_FOLLOW_EVERY');
    expect(envName('registry.insecureSkipTlsVerify')).toBe('DIGINFRACTL_REGISTRY_INSECURE_SKIP_TLS_VERIFY');
    expect(envName('follow.engineVersionsUrl')).toBe('DIGINFRACTL_FOLLOW_ENGINE_VERSIONS_URL');
    expect(new Set(KEYS.map((k) => k.env)).size).toBe(KEYS.length);
  });
});

describe('parseDuration', () => {
  it.each([
    ['6h', 6 * 3600_000],
    ['30m', 1800_000],
    ['1h30m', 5400_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['1.5h', 5400_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '6', 'h', '6 h', '6d', '-1h', '1h 30m'])('rejects %j', (text) => expect(parseDuration(text)).toBeUndefined());
});
