/**
 * The config file the chart (every example), the kustomize base and the README's embedded example render
 * into their ConfigMap is one that the CLI itself accepts: `diginfractl config show --config FILE` (and
 * `config validate FILE`) exit 0 on it.
 *
 * Needs the built CLI (`npm run build`, which `npm test` runs first): without dist/bin/diginfractl.cjs, or
 * with a CLI lacking `config show` / `config validate`, the tests fail and say so (never skipped).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCli, runCli } from '../helpers/cli.js';
import { CHART_DIR, DEPLOY_DIR, ensureK8sTools, kubectl } from '../helpers/helm.js';
import { parse as parseYaml } from 'yaml';
import { helmTemplate, parseManifests } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- config files are untyped YAML */
/** [path, value] of every leaf (lists and empty maps are leaves); keys may hold dots (host names). */
function leafPaths(v: any, prefix: string[] = []): [string[], unknown][] {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
    return Object.entries(v).flatMap(([k, sub]) => leafPaths(sub, [...prefix, k]));
  }
  return [[prefix, v]];
}

function get(v: any, path: string[]): unknown {
  return path.reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), v);
}

function isolatedEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: join(home, 'config'),
    XDG_CACHE_HOME: join(home, 'cache'),
    NO_COLOR: '1',
  };
}

/** name -> config file text, from every rendering. */
const configs = new Map<string, string>();
let dir = '';

beforeAll(async () => {
  requireCli('config', ['show', 'validate']);
  await ensureK8sTools();
  dir = await mkdtemp(join(tmpdir(), 'diginfractl-config-show-'));
  for (const file of readdirSync(join(CHART_DIR, 'ci')).filter((f) => f.endsWith('.yaml'))) {
    const r = await helmTemplate({ valuesFiles: [join(CHART_DIR, 'ci', file)] });
    expect(r.code, r.stderr).toBe(0);
    configs.set(`chart ci/${file}`, parseManifests(r.stdout).find((o) => o.kind === 'ConfigMap')!.data['diginfractl.yaml']);
  }
  const k = await kubectl(['kustomize', DEPLOY_DIR]);
  expect(k.code, k.stderr).toBe(0);
  configs.set('deploy/', parseManifests(k.stdout).find((o) => o.kind === 'ConfigMap')!.data['diginfractl.yaml']);
  const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8');
  const snippet = /<!-- embedded-pod-example -->\s*```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
  configs.set('README embedded example', parseManifests(snippet).find((o) => o.kind === 'ConfigMap')!.data['diginfractl.yaml']);
}, 120_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const NAMES = [
  ...readdirSync(join(CHART_DIR, 'ci'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => `chart ci/${f}`),
  'deploy/',
  'README embedded example',
];

describe('diginfractl config show accepts the rendered ConfigMap', () => {
  it.each(NAMES)('%s', async (name) => {
    const text = configs.get(name);
    expect(text, name).toBeDefined();
    const file = join(dir, `${name.replace(/[^\w.-]+/g, '_')}.yaml`);
    await writeFile(file, text!);
    const show = await runCli(['config', 'show', '--config', file], { env: isolatedEnv(dir), timeoutMs: 20_000 });
    expect(show.code, `config show --config ${name}:\n${show.stderr}`).toBe(0);
    // It read our file, not a default: the refs from the ConfigMap appear in what it prints.
    expect(show.stdout).toContain('diginfra-rules:3');
    // Machine-readable: every value we wrote is taken from the file as written, none ignored or renamed.
    const json = await runCli(['config', 'show', '-o', 'json', '--config', file], { env: isolatedEnv(dir), timeoutMs: 20_000 });
    expect(json.code, json.stderr).toBe(0);
    const shown = JSON.parse(json.stdout);
    expect(shown.exists).toBe(true);
    const written = parseYaml(text!);
    for (const [path, value] of leafPaths(written)) {
      expect(get(shown.config, path), `${name}: ${path.join('.')} as the CLI sees it`).toEqual(value);
    }
    for (const [key, src] of Object.entries<string>(shown.sources)) {
      const top = key.split('.')[0]!;
      if (get(written, key.split('.')) !== undefined) expect(src, `${name}: source of ${key}`).toBe('file');
      else if (!(top in written)) expect(src, `${name}: source of ${key}`).not.toBe('file');
    }
    expect(show.stderr + json.stderr, 'no warning about the config file').not.toMatch(/"level":\s*[4-9]0|warn/i);
    const validate = await runCli(['config', 'validate', file], { env: isolatedEnv(dir), timeoutMs: 20_000 });
    expect(validate.code, `config validate ${name}:\n${validate.stderr}`).toBe(0);
    expect(validate.stderr, 'no warning about the config file').not.toMatch(/"level":\s*[4-9]0|warn/i);
  });
});
