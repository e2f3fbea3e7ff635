import { mkdir, mkdtemp, readdir, readFile, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, loadConfigFile } from '../../src/config/load.js';
import { saveConfig, updateConfigFile } from '../../src/config/save.js';
import { resolveConfigPath } from '../../src/config/paths.js';
import { isDiginfraError } from '../../src/errors.js';

let dir: string;
let env: Record<string, string>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'diginfractl-config-'));
  env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'xdg-config'), XDG_CACHE_HOME: join(dir, 'xdg-cache') };
});

describe('config path', () => {
  it('is the flag, else DIGINFRACTL_CONFIG, else /etc/... if it exists, else $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml', async () => {
    const system = join(dir, 'etc.yaml');
    expect(resolveConfigPath({ env, systemPath: system })).toBe(join(dir, 'xdg-config', 'diginfractl', 'diginfractl.yaml'));
    expect(resolveConfigPath({ env: { HOME: dir }, systemPath: system })).toBe(join(dir, '.config', 'diginfractl', 'diginfractl.yaml'));
    await writeFile(system, '');
    expect(resolveConfigPath({ env, systemPath: system })).toBe(system);
    expect(resolveConfigPath({ env: { ...env, DIGINFRACTL_CONFIG: '/from/env.yaml' }, systemPath: system })).toBe('/from/env.yaml');
    expect(resolveConfigPath({ path: '/from/flag.yaml', env: { ...env, DIGINFRACTL_CONFIG: '/from/env.yaml' }, systemPath: system })).toBe('/from/flag.yaml');
  });
});

describe('loadConfig', () => {
  it('gives defaults (with the diginfra index) when the file is missing', async () => {
    const r = await loadConfig({ env, systemPath: join(dir, 'none') });
    expect(r.exists).toBe(false);
    expect(r.config.indexes.map((i) => i.name)).toEqual(['diginfra']);
    expect(new Set(Object.values(r.sources))).toEqual(new Set(['default']));
  });

  it('layers env over the file and records where each value came from', async () => {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'install:\n  refs: [a]\nfollow:\n  every: 1h\n');
    const r = await loadConfig({ path, env: { ...env, DIGINFRACTL_FOLLOW_EVERY: '5m' } });
    expect(r.path).toBe(path);
    expect(r.config.install.refs).toEqual(['a']);
    expect(r.config.follow.every).toBe('5m');
    expect(r.sources).toMatchObject({ 'install.refs': 'file', 'follow.every': 'env', 'follow.refs': 'default' });
  });

  it('reports YAML syntax errors with the file, line and column', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'install:\n  refs: [a\n');
    const err = await loadConfig({ path, env }).catch((e: unknown) => e);
    expect(isDiginfraError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/^config .*bad\.yaml: line \d+, column \d+: /);
  });

  it('memoises the parse by exact text: an edit is always seen', async () => {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'follow:\n  every: 1h\n');
    expect((await loadConfig({ path, env })).config.follow.every).toBe('1h');
    expect((await readdir(join(dir, 'xdg-cache', 'diginfractl', 'parsed-config'))).length).toBe(1);
    expect((await loadConfig({ path, env })).config.follow.every).toBe('1h');
    await writeFile(path, 'follow:\n  every: 2h\n');
    expect((await loadConfig({ path, env })).config.follow.every).toBe('2h');
    await writeFile(path, 'follow:\n  every: [2h\n');
    await expect(loadConfig({ path, env })).rejects.toThrow(/line/);
  });

  it('never copies a file with credentials into the parse memo', async () => {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'registry:\n  auth:\n    basic:\n      - {registry: ghcr.io, user: u, password: s3cret}\n');
    expect((await loadConfig({ path, env })).config.registry.auth?.basic[0]?.password).toBe('s3cret');
    const memo = join(dir, 'xdg-cache', 'diginfractl', 'parsed-config');
    const files = await readdir(memo).catch(() => [] as string[]);
    for (const f of files) expect(await readFile(join(memo, f), 'utf8')).not.toContain('s3cret');
  });

  it('refuses a directory and an unreadable file clearly', async () => {
    const err = await loadConfig({ path: dir, env }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`config ${dir}: is a directory, not a file`);
    if (process.getuid?.() !== 0) {
      const path = join(dir, 'locked.yaml');
      await writeFile(path, '{}');
      await chmod(path, 0);
      await expect(loadConfig({ path, env })).rejects.toThrow(/cannot read/);
    }
  });
});

describe('saveConfig', () => {
  it('keeps comments, key order and unrelated keys; changes only what changed', async () => {
    const path = join(dir, 'c.yaml');
    const before = [
      '# top comment',
      'indexes: # my indexes',
      '  - name: diginfra # the default',
      '    url: https://diginfra.github.io/diginfractl/index.yaml',
      'follow:',
      '  every: 1h # hourly',
      '  refs: [a, b]',
      '',
    ].join('\n');
    await writeFile(path, before);
    await chmod(path, 0o640);
    const { config } = await loadConfigFile(path, env);
    config.indexes.push({ name: 'corp', url: 'https://corp/index.yaml', added: '2025-01-01T00:00:00.000Z' });
    await saveConfig(path, config);
    const after = await readFile(path, 'utf8');
    // (the yaml library moves a comment after "key:" of a block list onto the next line)
    expect(after).toBe(
      [
        '# top comment',
        'indexes:',
        '  # my indexes',
        '  - name: diginfra # the default',
        '    url: https://diginfra.github.io/diginfractl/index.yaml',
        '  - name: corp',
        '    url: https://corp/index.yaml',
        '    added: 2025-01-01T00:00:00.000Z',
        'follow:',
        '  every: 1h # hourly',
        '  refs: [ a, b ]',
        '',
      ].join('\n'),
    );
    expect((await stat(path)).mode & 0o777).toBe(0o640);
    expect((await readdir(dir)).filter((f) => f.includes('tmp'))).toEqual([]);
    expect((await loadConfigFile(path, env)).config.indexes.map((i) => i.name)).toEqual(['diginfra', 'corp']);
  });

  it('creates a new file with only what differs from the defaults', async () => {
    const path = join(dir, 'sub', 'new.yaml');
    const { config } = await loadConfigFile(path, env);
    config.indexes = [];
    await saveConfig(path, config);
    expect(await readFile(path, 'utf8')).toBe('indexes: []\n');
    expect((await loadConfigFile(path, env)).config.indexes).toEqual([]);
  });

  it('writes through the falcoctl alias the file already uses', async () => {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'artifact:\n  install:\n    refs: [a]\n');
    const { config } = await loadConfigFile(path, env);
    config.install.refs = ['b'];
    await saveConfig(path, config);
    expect(await readFile(path, 'utf8')).toBe('artifact:\n  install:\n    refs:\n      - b\n');
  });

  it('updateConfigFile never writes environment overrides into the file', async () => {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'follow:\n  every: 1h\n');
    process.env.DIGINFRACTL_FOLLOW_EVERY = '5m';
    try {
      await updateConfigFile(path, (c) => ({ ...c, indexes: [] }), env);
    } finally {
      delete process.env.DIGINFRACTL_FOLLOW_EVERY;
    }
    expect(await readFile(path, 'utf8')).toBe('follow:\n  every: 1h\nindexes: []\n');
  });

  it('refuses to save an invalid config and leaves the file as it was', async () => {
    const path = join(dir, 'c.yaml');
    await writeFile(path, 'follow:\n  every: 1h\n');
    await expect(updateConfigFile(path, (c) => ({ ...c, indexes: [{ name: 'bad name', url: '/x' }] }), env)).rejects.toThrow(/indexes\[0\]\.name/);
    expect(await readFile(path, 'utf8')).toBe('follow:\n  every: 1h\n');
  });

  it('refuses to rewrite a file whose YAML does not parse', async () => {
    await mkdir(join(dir, 'x'));
    const path = join(dir, 'x', 'c.yaml');
    await writeFile(path, 'a: [\n');
    const err = await saveConfig(path, (await loadConfigFile(join(dir, 'none.yaml'), env)).config).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/cannot update the file, its YAML does not parse/);
    expect(await readFile(path, 'utf8')).toBe('a: [\n');
  });
});

describe('unknown environment variables', () => {
  it('warns about a misspelt DIGINFRACTL_* variable with the nearest real one', async () => {
    const { unknownEnvWarnings } = await import('../../src/config/load.js');
    expect(unknownEnvWarnings({ DIGINFRACTL_INSTAL_REFS: 'x', DIGINFRACTL_CONFIG: '/x', PATH: '/bin' })).toEqual([
      'environment variable DIGINFRACTL_INSTAL_REFS is not a diginfractl setting and is ignored (did you mean DIGINFRACTL_INSTALL_REFS?)',
    ]);
  });
});
