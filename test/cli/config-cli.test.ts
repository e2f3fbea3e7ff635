/** `diginfractl config show|validate` end to end. */
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';

describe('config show', () => {
  it('prints the effective config as YAML, each value annotated with its source; secrets masked', async () => {
    const env = await cliEnv({ DIGINFRACTL_FOLLOW_EVERY: '10m', DIGINFRACTL_INSTALL_REFS: 'a,b' });
    await writeFile(
      env.DIGINFRACTL_CONFIG!,
      'indexes: []\ninstall:\n  resolveDeps: false\nregistry:\n  auth:\n    basic:\n      - registry: ghcr.io\n        user: me\n        password: very-s3cret\n',
    );
    const r = await runCli(['config', 'show'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`# config file: ${env.DIGINFRACTL_CONFIG}\n`);
    expect(r.stdout).toContain('indexes: [] # file\n');
    expect(r.stdout).toContain('  resolveDeps: false # file\n');
    expect(r.stdout).toContain('  every: 10m # env DIGINFRACTL_FOLLOW_EVERY\n');
    expect(r.stdout).toContain('  # env DIGINFRACTL_INSTALL_REFS\n  refs:\n    - a\n    - b\n');
    expect(r.stdout).toContain('  pluginsDir: /usr/share/diginfra/plugins # default\n');
    expect(r.stdout).toContain('password: "********"');
    expect(r.stdout + r.stderr).not.toContain('very-s3cret');
  });

  it('-o json gives the config, the path and the source of every key', async () => {
    const env = await cliEnv({ DIGINFRACTL_REGISTRY_PLAIN_HTTP: 'localhost:5000' });
    await writeFile(env.DIGINFRACTL_CONFIG!, 'follow:\n  every: 1h\n');
    const r = await runCli(['config', 'show', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.path).toBe(env.DIGINFRACTL_CONFIG);
    expect(j.exists).toBe(true);
    expect(j.config.follow.every).toBe('1h');
    expect(j.config.registry.plainHttp).toEqual(['localhost:5000']);
    expect(j.sources).toMatchObject({ 'follow.every': 'file', 'registry.plainHttp': 'env', indexes: 'default' });
    expect(j.env).toEqual({ 'registry.plainHttp': 'DIGINFRACTL_REGISTRY_PLAIN_HTTP' });
  });

  it('--config wins over DIGINFRACTL_CONFIG; a missing file means defaults', async () => {
    const env = await cliEnv();
    const other = join(dirname(env.DIGINFRACTL_CONFIG!), 'other.yaml');
    await writeFile(other, 'cacheDir: /somewhere\n');
    const r = await runCli(['config', 'show', '-o', 'json', '--config', other], { env });
    expect(JSON.parse(r.stdout)).toMatchObject({ path: other, config: { cacheDir: '/somewhere' } });
    const missing = await runCli(['config', 'show'], { env });
    expect(missing.code).toBe(0);
    expect(missing.stdout).toContain('(not found: defaults apply)');
    expect(missing.stdout).toMatch(/- name: diginfra\n\s+url: https:\/\/diginfra\.github\.io\/diginfractl\/index\.yaml/);
  });

  it('falls back to $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml', async () => {
    const env = await cliEnv();
    delete env.DIGINFRACTL_CONFIG;
    const r = await runCli(['config', 'show', '-o', 'json'], { env });
    expect(JSON.parse(r.stdout).path).toBe(join(env.XDG_CONFIG_HOME!, 'diginfractl', 'diginfractl.yaml'));
  });

  it('bad values, bad env and bad flags fail with the name of the thing', async () => {
    const env = await cliEnv();
    await writeFile(env.DIGINFRACTL_CONFIG!, 'install:\n  resolveDeps: maybe\n  rulesFilesDir: /x\n');
    const r = await runCli(['config', 'show'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: config ${env.DIGINFRACTL_CONFIG}: install.resolveDeps must be true or false\n` +
        `config ${env.DIGINFRACTL_CONFIG}: unknown key "install.rulesFilesDir" (did you mean "install.rulesfilesDir"?)\n` +
        `hint: fix these keys in ${env.DIGINFRACTL_CONFIG}; docs/configuration.md lists every key\n`,
    );
    expect(r.stdout).toBe('');
    await writeFile(env.DIGINFRACTL_CONFIG!, '');
    const badEnv = await runCli(['config', 'show'], { env: { ...env, DIGINFRACTL_FOLLOW_JITTER: 'lots' } });
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toContain('error: environment variable DIGINFRACTL_FOLLOW_JITTER must be a number, not "lots"');
    const badFormat = await runCli(['config', 'show', '-o', 'xml'], { env });
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toContain('error: -o "xml" is not one of yaml, json');
  });

  it('accepts a falcoctl-style config and says which keys it ignores', async () => {
    const env = await cliEnv();
    await writeFile(
      env.DIGINFRACTL_CONFIG!,
      'artifact:\n  allowedTypes: [rulesfile]\n  follow:\n    every: 12h\n    falcoversions: http://localhost:8765/versions\n  noVerify: true\n',
    );
    const r = await runCli(['config', 'show', '-o', 'json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).config.follow).toMatchObject({ every: '12h', engineVersionsUrl: 'http://localhost:8765/versions', allowedTypes: ['rulesfile'] });
    expect(r.stderr).toContain('artifact.noVerify is ignored');
  });
});

describe('config validate', () => {
  it('exit 0 for a valid file, 1 with every problem for a bad one, 1 for a missing one', async () => {
    const env = await cliEnv();
    const dir = dirname(env.DIGINFRACTL_CONFIG!);
    await writeFile(join(dir, 'good.yaml'), 'indexes:\n  - name: corp\n    url: https://idx.example.com/index.yaml\nfollow:\n  every: 30m\n');
    const good = await runCli(['config', 'validate', join(dir, 'good.yaml')], { env });
    expect(good.code).toBe(0);
    expect(good.stdout).toBe(`config ${join(dir, 'good.yaml')}: valid\n`);

    await writeFile(join(dir, 'bad.yaml'), 'follow:\n  every: sometimes\n  jitter: 2\n');
    const bad = await runCli(['config', 'validate', join(dir, 'bad.yaml')], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`error: config ${join(dir, 'bad.yaml')}: follow.every: "sometimes" is not a duration`);
    expect(bad.stderr).toContain(`config ${join(dir, 'bad.yaml')}: follow.jitter must be between 0 and 1, not 2`);

    await writeFile(join(dir, 'syntax.yaml'), 'follow:\n  every: [1h\n');
    const syntax = await runCli(['config', 'validate', join(dir, 'syntax.yaml')], { env });
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/error: config .*syntax\.yaml: line \d+, column \d+: /);

    const missing = await runCli(['config', 'validate', join(dir, 'nope.yaml')], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`error: config ${join(dir, 'nope.yaml')}: file not found`);
  });
});
