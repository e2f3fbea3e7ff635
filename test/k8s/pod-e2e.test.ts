/**
 * Pod-level end-to-end: the chart's rendered pod, run for real without a cluster or a container engine.
 *
 * The chart is rendered with `helm template` for a real registry (test/helpers/registry.ts). Then each
 * diginfractl container of the rendered DaemonSet is run as the image would run it: the image's ENTRYPOINT
 * (`diginfractl` = dist/bin/diginfractl.cjs) with the container's exact args and env, the rendered ConfigMap
 * content as the config file at a stand-in for its mount, and temp dirs as the hostPaths (rendered at
 * those very paths, since hostPaths are mounted at the same path in the container).
 *
 * - "init": `artifact install` installs the rules file and this machine's build of a two-platform plugin,
 *   and exits 0.
 * - "sidecar": `artifact follow` serves /readyz once synced, swaps in a version pushed while it runs, and
 *   exits 0 on SIGTERM.
 *
 * Needs the built CLI (`npm test` builds first): without dist/bin/diginfractl.cjs, or with a CLI lacking
 * `artifact install` / `artifact follow`, the tests fail and say so (they are never skipped).
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { requireCli, spawnCli, runCli } from '../helpers/cli.js';
import { ensureK8sTools } from '../helpers/helm.js';
import { assembleImage, IMAGE_UID, requireImageRuntime, runInImage, startInImage, type ContainerRun, type Mount } from './image.js';
import { containerEnv, GEO_DATA, PLATFORM, renderPod, RULES_FILE, RULES_V1, RULES_V2, startArtifacts, type ArtifactFixture } from './pod-fixture.js';
import { freePort } from '../helpers/net.js';
import type { Container, K8sObject, PodSpec } from './support.js';

let fixture: ArtifactFixture;
let root: string;
let host: { rules: string; plugins: string; state: string; assets: string };
let metricsPort: number;
let pod: PodSpec;
let configMap: K8sObject;
/** Container mount path -> directory standing in for it (the hostPaths map to themselves). */
let standIns: Record<string, string> = {};

/** Pushes the rules file at `version`, moving the floating tags (`1`, `1.x`). */
const pushRules = (version: string, content: string) => fixture.pushRules(version, content);

/** A path inside the container -> the path on this machine. */
function onHost(path: string): string {
  const mount = Object.keys(standIns)
    .filter((m) => path === m || path.startsWith(`${m}/`))
    .sort((a, b) => b.length - a.length)[0];
  return mount === undefined ? path : posix.join(standIns[mount]!, path.slice(mount.length));
}

/** The container's command line and env as the kubelet would start them, paths mapped to stand-ins. */
function asRun(c: Container): { args: string[]; env: NodeJS.ProcessEnv } {
  expect(c.command, 'the image ENTRYPOINT runs').toBeUndefined();
  const args = c.args!.map((a) => (a.startsWith('/') ? onHost(a) : a));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    // The image's ENV (Dockerfile), then the container's env from the pod spec.
    NODE_ENV: 'production',
    HOME: onHost('/tmp'),
    TMPDIR: onHost('/tmp'),
    XDG_CACHE_HOME: onHost('/var/lib/diginfractl/cache'),
    XDG_CONFIG_HOME: onHost('/var/lib/diginfractl/config'),
  };
  for (const [name, value] of Object.entries(containerEnv(c))) env[name] = value.startsWith('/') ? onHost(value) : value;
  return { args, env };
}

beforeAll(async () => {
  requireCli('artifact', ['install', 'follow']);
  await ensureK8sTools();
  fixture = await startArtifacts({ prefix: 'diginfractl-pod-e2e-' });
  root = fixture.root;

  host = {
    rules: join(root, 'host/etc/diginfra'),
    plugins: join(root, 'host/usr/share/diginfra/plugins'),
    state: join(root, 'host/var/lib/diginfractl'),
    assets: join(root, 'host/etc/diginfra-assets'),
  };
  metricsPort = await freePort();
  const values = {
    indexes: [],
    allowedTypes: ['rulesfile', 'plugin', 'asset'],
    artifacts: {
      install: { refs: [fixture.refs.rules, fixture.refs.plugin, fixture.refs.asset] },
      follow: { refs: [fixture.refs.rules], every: '1s', jitter: 0 },
    },
    registry: { plainHttp: [fixture.reg.host] },
    hostPaths: { rulesfilesDir: host.rules, pluginsDir: host.plugins, stateDir: host.state, dirs: { asset: host.assets } },
    metrics: { address: '127.0.0.1', port: metricsPort },
  };
  const rendered = await renderPod(root, values);
  configMap = rendered.configMap;
  pod = rendered.pod;
  const inv = rendered.invariants;

  // Stand-ins: the ConfigMap volume (its keys as files), /tmp; hostPaths are the temp dirs themselves.
  const configDir = join(root, 'mounts/config');
  const tmp = join(root, 'mounts/tmp');
  await mkdir(configDir, { recursive: true });
  await mkdir(tmp, { recursive: true });
  for (const [key, text] of Object.entries<string>(configMap.data)) await writeFile(join(configDir, key), text);
  standIns = { [posix.dirname(inv.configPath)]: configDir, '/tmp': tmp };
  // DirectoryOrCreate: the kubelet creates missing host dirs.
  for (const v of pod.volumes ?? []) if (v.hostPath) await mkdir(v.hostPath.path, { recursive: true });
}, 120_000);

afterAll(async () => {
  await fixture?.close();
});

/**
 * The same containers in the runtime image (test/k8s/image.ts: the Dockerfile's runtime stage assembled
 * without an engine), with the pod's security context, a read-only root filesystem and the pod's
 * volumes at their mountPaths. The hostPaths are mounted from directories of their own, so these runs
 * and the ones below do not see each other's files.
 */
describe('the rendered pod in the runtime image (read-only root, capabilities dropped)', () => {
  let image: string;
  let scratch: string;

  beforeAll(async () => {
    await requireImageRuntime();
    scratch = await mkdtemp(join(tmpdir(), 'diginfractl-image-'));
    image = await assembleImage(scratch);
  }, 120_000);
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** The container as the runtime would start it: the pod's volumes (hostPaths from `dirs`), its env, its UID. */
  async function inImage(c: Container, dirs: { rules: string; plugins: string; state: string; assets: string }, uid?: number): Promise<ContainerRun> {
    const byVolume = new Map((pod.volumes ?? []).map((v: { name: string }) => [v.name, v]));
    const hostSource: Record<string, string> = { [host.rules]: dirs.rules, [host.plugins]: dirs.plugins, [host.state]: dirs.state, [host.assets]: dirs.assets };
    const tmp = await mkdtemp(join(scratch, 'tmp-'));
    await chmod(tmp, 0o1777);
    const mounts: Mount[] = (c.volumeMounts ?? []).map((m: { name: string; mountPath: string; readOnly?: boolean }) => {
      const v = byVolume.get(m.name) as { hostPath?: { path: string }; configMap?: unknown; emptyDir?: unknown } | undefined;
      const source = v?.hostPath ? hostSource[v.hostPath.path] : v?.configMap ? standIns[m.mountPath] : m.mountPath === '/tmp' ? tmp : undefined;
      expect(source, `no stand-in for volume ${m.name} at ${m.mountPath}`).toBeDefined();
      return { source: source!, target: m.mountPath, ...(m.readOnly && { readOnly: true }) };
    });
    const env = containerEnv(c);
    const ctx = { ...(pod.securityContext ?? {}), ...(c.securityContext ?? {}) } as { runAsUser?: number; runAsGroup?: number; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
    // What the runner below applies is what the pod asks for.
    expect(ctx.readOnlyRootFilesystem).toBe(true);
    expect(ctx.capabilities?.drop).toContain('ALL');
    const runAs = uid ?? ctx.runAsUser ?? IMAGE_UID;
    return { args: c.args!, env, mounts, uid: runAs, gid: uid ?? ctx.runAsGroup ?? runAs };
  }

  async function hostDirs(name: string, owner?: number): Promise<{ rules: string; plugins: string; state: string; assets: string }> {
    const dirs = { rules: join(scratch, name, 'rules'), plugins: join(scratch, name, 'plugins'), state: join(scratch, name, 'state'), assets: join(scratch, name, 'assets') };
    for (const d of Object.values(dirs)) {
      await mkdir(d, { recursive: true });
      if (owner !== undefined) await chown(d, owner, owner);
    }
    return dirs;
  }

  it("init container: artifact install, as the pod's root without capabilities, places the rules and this node's plugin build", async () => {
    const install = pod.initContainers!.find((c) => c.name === 'install')!;
    const dirs = await hostDirs('root');
    const r = await runInImage(image, await inImage(install, dirs));
    expect(r.code, `install exited ${r.code}:\n${r.stderr}`).toBe(0);
    expect(await readFile(join(dirs.rules, RULES_FILE), 'utf8')).toBe(RULES_V1);
    expect((await readFile(join(dirs.plugins, 'libjson.so'))).toString('latin1')).toContain(`json 0.7.0 ${PLATFORM}\n`);
    expect(await readFile(join(dirs.assets, 'geo.mmdb'))).toEqual(GEO_DATA);
    // The blob cache is on the state hostPath (XDG_CACHE_HOME), so a restarted pod downloads nothing again.
    expect((await readdir(join(dirs.state, 'cache'), { recursive: true })).some((f) => /sha256/.test(String(f)))).toBe(true);
  }, 60_000);

  it("init container as the image user 65532 (the chart's non-root setup, host dirs owned by that UID)", async () => {
    const install = pod.initContainers!.find((c) => c.name === 'install')!;
    const dirs = await hostDirs('nonroot', IMAGE_UID);
    const r = await runInImage(image, await inImage(install, dirs, IMAGE_UID));
    expect(r.code, `install exited ${r.code}:\n${r.stderr}`).toBe(0);
    const placed = join(dirs.rules, RULES_FILE);
    expect(await readFile(placed, 'utf8')).toBe(RULES_V1);
    expect((await stat(placed)).uid).toBe(IMAGE_UID);
    // Root-owned host dirs and no capabilities: a clear error, not a partial install.
    const denied = await runInImage(image, await inImage(install, await hostDirs('denied'), IMAGE_UID));
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/EACCES|permission denied/i);
  }, 60_000);

  it('follow container without /proc (a bare chroot): it cannot re-execute itself, so it runs as it is, and works', async () => {
    const follow = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === 'follow')!;
    const dirs = await hostDirs('noproc');
    // --once: check each ref, install, exit. Node 24 aborts on a failed execve(2); the bin must not try one it cannot make.
    const r = await runInImage(image, { ...(await inImage(follow, dirs)), args: [...follow.args!, '--once'], proc: false });
    expect(r.stderr).not.toContain('execve');
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(dirs.rules, RULES_FILE), 'utf8')).toBe(RULES_V1);
  }, 60_000);

  it('follow container: ready once synced, exits 0 on SIGTERM (its lazily loaded modules are all production dependencies)', async () => {
    const follow = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === 'follow')!;
    const dirs = await hostDirs('follow');
    const child = await startInImage(image, await inImage(follow, dirs));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
    try {
      const deadline = Date.now() + 20_000;
      let ready = 0;
      while (ready !== 200 && Date.now() < deadline && child.exitCode === null) {
        ready = await request(`http://127.0.0.1:${metricsPort}${follow.readinessProbe.httpGet.path}`).then((r) => (void r.body.dump(), r.statusCode), () => 0);
        if (ready !== 200) await sleep(100);
      }
      expect(ready, stderr).toBe(200);
      // The agent re-executed itself in the image (same PID through unshare, chroot, setpriv and env).
      const environ = (await readFile(`/proc/${child.pid}/environ`, 'latin1')).split('\0');
      expect(environ).toContain('MALLOC_MMAP_THRESHOLD_=65536');
      expect((await readFile(`/proc/${child.pid}/cmdline`, 'latin1')).split('\0')).toContain('--no-maglev');
      const metrics = await request(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.body.text());
      expect(metrics).toMatch(/^diginfractl_artifact_info\{[^}]*version="1\.0\.0"[^}]*\} 1$/m);
      expect(await readFile(join(dirs.rules, RULES_FILE), 'utf8')).toBe(RULES_V1);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr).toEqual({ code: 0, signal: null });
    expect(stderr).not.toMatch(/Cannot find module|EROFS|"level":50/);
  }, 60_000);
});

describe('the rendered pod, run as the kubelet would run it', () => {
  it('init container: artifact install places the rules and this node\'s plugin build, and exits 0', async () => {
    const install = pod.initContainers!.find((c) => c.name === 'install')!;
    const { args, env } = asRun(install);
    const r = await runCli(args, { env, cwd: root });
    expect(r.code, `install exited ${r.code}:\n${r.stderr}`).toBe(0);
    expect(await readFile(join(host.rules, RULES_FILE), 'utf8')).toBe(RULES_V1);
    const plugin = await readFile(join(host.plugins, 'libjson.so'));
    expect(plugin.toString('latin1')).toContain(`json 0.7.0 ${PLATFORM}\n`);
    expect(await readFile(join(host.assets, 'geo.mmdb'))).toEqual(GEO_DATA);
    // Nothing written outside the mounted dirs: the root filesystem may be read-only.
    expect((await readdir(root)).sort()).toEqual(['host', 'mounts', 'src', 'values.yaml']);
  }, 60_000);

  describe('sidecar', () => {
    let child: ChildProcess | undefined;
    let stderr = '';

    afterAll(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    async function get(path: string): Promise<{ status: number; body: string }> {
      try {
        const res = await request(`http://127.0.0.1:${metricsPort}${path}`);
        return { status: res.statusCode, body: await res.body.text() };
      } catch {
        return { status: 0, body: '' };
      }
    }

    async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
      const deadline = Date.now() + ms;
      for (;;) {
        const v = await probe();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; follow stderr:\n${stderr}`);
        await sleep(100);
      }
    }

    it('follow: /readyz once synced, swaps a pushed update, exits 0 on SIGTERM', async () => {
      const follow = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === 'follow')!;
      const { args, env } = asRun(follow);
      child = spawnCli(args, { env, cwd: root });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));

      // The probes the pod spec declares, at the port it declares.
      const port = follow.ports!.find((p) => p.name === 'metrics')!.containerPort;
      expect(port).toBe(metricsPort);
      await waitFor('/readyz', async () => ((await get(follow.readinessProbe.httpGet.path)).status === 200 ? true : undefined));
      expect((await get(follow.livenessProbe.httpGet.path)).status).toBe(200);

      await pushRules('1.1.0', RULES_V2);
      await waitFor('the swap to 1.1.0', async () => ((await readFile(join(host.rules, RULES_FILE), 'utf8')) === RULES_V2 ? true : undefined));
      // The metrics follow the swap (they are updated right after the rename).
      const updated = /^diginfractl_follow_updates_total\{[^}]*ref="[^"]*diginfra-rules:1"[^}]*\} [1-9]/m;
      const metrics = await waitFor('the update in /metrics', async () => {
        const body = (await get('/metrics')).body;
        return updated.test(body) ? body : undefined;
      }, 5_000);
      expect(metrics).toMatch(/^diginfractl_artifact_info\{[^}]*version="1\.1\.0"[^}]*\} 1$/m);
      expect(metrics).not.toMatch(/^diginfractl_artifact_info\{[^}]*version="1\.0\.0"[^}]*\} 1$/m);

      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) => child!.once('exit', (code, signal) => ok({ code, signal })));
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
      expect(await readFile(join(host.rules, RULES_FILE), 'utf8')).toBe(RULES_V2);
    }, 60_000);
  });
});
