/**
 * The real container image: built from the Dockerfile by scripts/image.sh (podman), pushed to a real
 * registry, pulled back by the digest the rendered pod names, and the pod's diginfractl containers run in
 * it as the kubelet would run them (test/k8s/kubelet.ts): the image's ENTRYPOINT with the rendered args
 * and env, the rendered user and groups, a read-only root, the capabilities dropped, the hostPath and
 * emptyDir volumes as bind mounts, the ConfigMap and the registry-credentials Secret in the kubelet's
 * `..data` layout, /tmp as a tmpfs; the host's network, to reach the registry on loopback.
 *
 * Two renderings of the chart: its defaults (a DaemonSet on hostPaths, as root) and the native-sidecar
 * values of charts/diginfractl/ci/embedded-values.yaml (emptyDirs, UID 65532, fsGroup, follow as an init
 * container with restartPolicy Always), each with the test's registry, refs and metrics port.
 *
 * The first run on a machine builds the base (debootstrap + Node) and the image: minutes; later runs
 * reuse podman's layer cache: seconds. Without podman (a developer's machine) the tests are skipped and
 * say why; on CI (CI set) a missing podman fails them, since scripts/bootstrap.sh installs it.
 */
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { type AddressInfo } from 'node:net';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { CHART_DIR, ensureK8sTools, REPO_ROOT } from '../helpers/helm.js';
import { prepareVolumes, removeContainer, rootChanges, runArgs, securityOf, startContainer, stopContainer, type VolumeSource } from './kubelet.js';
import { buildImage, inspectImage, podman, podmanMissing, type BuiltImage } from './podman.js';
import { containerEnv, GEO_DATA, PLATFORM, renderPod, RULES_FILE, RULES_V1, startArtifacts, type ArtifactFixture, type RenderedPod } from './pod-fixture.js';
import { freePort } from '../helpers/net.js';

const TITLE = 'the image built by scripts/image.sh, running the rendered pod as the kubelet would (podman)';
const missing = podmanMissing();
const onCi = !!process.env.CI && process.env.CI !== 'false';
if (missing && !onCi) console.warn(`test/k8s/image-e2e.test.ts skipped: ${missing}`);

/** Each build step of a cold build may take minutes (npm ci of every devDependency, debootstrap). */
const BUILD_TIMEOUT_MS = 30 * 60_000;
const IMAGE_TAG = 'localhost/diginfractl:e2e';
const SECRET_NAME = 'diginfractl-registry';
/** The layers this project adds over the Node base: /app (dist, production node_modules), the user. */
const MAX_OVER_BASE_MIB = 32;

let fixture: ArtifactFixture;
let image: BuiltImage;
let dockerConfig: string;
let authFile: string;
/** The rules the registry's floating tag `1` serves now, and the versions pushed so far. */
let currentRules = RULES_V1;
let pushedMinor = 0;

if (missing && onCi) {
  describe(TITLE, () => {
    it('needs podman and runc, which scripts/bootstrap.sh installs', () => {
      throw new Error(missing);
    });
  });
}

describe.skipIf(missing !== undefined)(missing ? `${TITLE} [skipped: ${missing}]` : TITLE, () => {
  beforeAll(async () => {
    await ensureK8sTools();
    fixture = await startArtifacts({ prefix: 'diginfractl-image-e2e-', registry: { auth: 'htpasswd' } });
    const { reg, root } = fixture;
    // One docker config for both: podman pushes and pulls with it, and it is the pod's Secret.
    dockerConfig = JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } });
    authFile = join(root, 'auth.json');
    await writeFile(authFile, dockerConfig, { mode: 0o600 });
    image = await buildImage({ tag: IMAGE_TAG, destination: `${reg.host}/diginfractl:e2e`, authFile, digestFile: join(root, 'digest') });
    console.info(`image built and pushed in ${image.seconds.toFixed(1)} s\n${image.summary}`);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await fixture?.close();
  });

  describe('the image', () => {
    it('is this machine\'s platform, runs diginfractl as UID 65532, has no HEALTHCHECK (the kubelet probes), and the script printed its size and contents', async () => {
      const info = await inspectImage(image.tag);
      expect(`${info.Os}/${info.Architecture}`).toBe(PLATFORM);
      expect(info.Config.User).toBe('65532:65532');
      expect(info.Config.Entrypoint).toEqual(['diginfractl']);
      expect(info.Config.Healthcheck).toBeUndefined();
      expect(Object.keys(info.Config.ExposedPorts ?? {})).toEqual(['9376/tcp']);
      const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
      expect(info.Config.Labels?.['org.opencontainers.image.version']).toBe(pkg.version);

      const sizeMiB = (info.Size / 2 ** 20).toFixed(1);
      expect(image.summary).toContain(`image ${image.tag} (${PLATFORM}): ${sizeMiB} MiB`);
      expect(image.summary).toMatch(/^ {2}node +v24\./m);
      expect(image.summary).toMatch(new RegExp(`^ {2}diginfractl ${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
      expect(image.summary).not.toMatch(/compiler/);
      // Everything above the Node base is the project's own: small.
      const overBase = Number(/, ([\d.]+) MiB over the base /.exec(image.summary)?.[1]);
      expect(overBase, image.summary).toBeLessThan(MAX_OVER_BASE_MIB);
    });

    it('holds Node 24, the production dependencies and nothing else: no devDependency, no compiler, no npm cache', async () => {
      const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
      // A devDependency may also be a production package's dependency (@tufjs/models is @sigstore/tuf's):
      // only those the lockfile marks dev-only must be absent.
      const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8'));
      const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev === true);
      // One look inside, as root to see every directory (/root too): a line per finding.
      const script = [
        'echo "node $(node --version)"',
        `for d in ${Object.keys(pkg.dependencies).join(' ')}; do test -e "/app/node_modules/$d" || echo "missing $d"; done`,
        `for d in ${devOnly.join(' ')}; do test -e "/app/node_modules/$d" && echo "devDependency $d"; done`,
        'for c in cc gcc g++ c++ clang make ld as; do command -v "$c" >/dev/null && echo "compiler $c"; done',
        'find / -xdev \\( -name _cacache -o -name .npm -o -name .node-gyp \\) -print 2>/dev/null | sed "s/^/cache /"',
        'true',
      ].join('\n');
      const { stdout } = await podman(['run', '--rm', '--network', 'none', '--read-only', '--read-only-tmpfs=false', '--user', '0:0', '--entrypoint', '/bin/sh', image.tag, '-c', script]);
      const lines = stdout.split('\n').filter(Boolean);
      expect(lines.find((l) => l.startsWith('node '))).toMatch(/^node v24\.\d+\.\d+$/);
      expect(lines.filter((l) => /^(missing|devDependency|compiler|cache) /.test(l)), 'missing production dependencies, devDependencies, compilers, npm caches').toEqual([]);
    });

    it('`diginfractl --version` works as its non-root user, with a read-only root, no capabilities and no network', async () => {
      const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
      const r = await podman(['run', '--rm', '--network', 'none', '--read-only', '--read-only-tmpfs=false', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', image.tag, '--version']);
      expect(r.stdout.trim()).toBe(pkg.version);
      const id = await podman(['run', '--rm', '--network', 'none', '--read-only', '--entrypoint', 'id', image.tag]);
      expect(id.stdout.trim()).toBe('uid=65532(diginfractl) gid=65532(diginfractl) groups=65532(diginfractl)');
    });

    it('is in the registry under the digest the push printed', async () => {
      const { reg } = fixture;
      const res = await request(`${reg.url}/v2/diginfractl/manifests/e2e`, {
        method: 'HEAD',
        headers: {
          authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`,
          accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
      expect(res.headers['docker-content-digest']).toBe(image.digest);
    });
  });

  const variants = [
    { label: 'default values', valuesFile: 'default-values.yaml', hostPaths: true },
    { label: 'native-sidecar values (ci/embedded-values.yaml)', valuesFile: 'embedded-values.yaml', hostPaths: false },
  ];
  for (const variant of variants) {
    describe(`the pod of the ${variant.label}`, () => {
      let dir: string;
      let rendered: RenderedPod;
      let volumes: Map<string, VolumeSource>;
      let metricsPort: number;
      let engine: Server | undefined;
      let engineRequests = 0;
      const names: string[] = [];

      /** Where a path inside the containers is on this machine: the volume mounted there. */
      function onHost(path: string): string {
        const mounts = (rendered.install.volumeMounts ?? []).filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
        const m = mounts.sort((a, b) => b.mountPath.length - a.mountPath.length)[0]!;
        const v = volumes.get(m.name)!;
        if (v.type !== 'bind') throw new Error(`${path} is on a tmpfs`);
        return posix.join(v.source, path.slice(m.mountPath.length));
      }

      /** The argv of `podman run` for one of the pod's containers. */
      function argsFor(c: typeof rendered.install, name: string): string[] {
        names.push(name);
        return runArgs(rendered.pod, c, { name, image: c.image!, volumes, env: containerEnv(c), hostNetwork: true });
      }

      /** Every change to the container's root is a mount point the runtime made for the pod's volumes. */
      async function expectOnlyMountPoints(name: string, c: typeof rendered.install): Promise<void> {
        const allowed = new Set(['/etc']); // podman's /etc/hosts, /etc/resolv.conf and /etc/hostname bind mounts
        for (const m of c.volumeMounts ?? []) {
          for (let p = m.mountPath.replace(/^\/var\/run\//, '/run/'); p !== '/'; p = posix.dirname(p)) allowed.add(p);
        }
        const changes = await rootChanges(name);
        const outside = changes.filter((line) => !allowed.has(line.slice(2)));
        expect(outside, `${name} wrote outside its volumes`).toEqual([]);
      }

      beforeAll(async () => {
        const { reg, refs, root } = fixture;
        dir = await mkdtemp(join(root, `${variant.valuesFile.replace('.yaml', '')}-`));
        metricsPort = await freePort();
        const [registry, ...path] = `${reg.host}/diginfractl`.split('/');
        const values: Record<string, unknown> = {
          image: { registry, repository: path.join('/'), digest: image.digest },
          imagePullSecrets: [{ name: SECRET_NAME }],
          indexes: [],
          allowedTypes: ['rulesfile', 'plugin', 'asset'],
          artifacts: {
            install: { refs: [refs.rules, refs.plugin, refs.asset] },
            follow: { refs: [refs.rules], every: '1s', jitter: 0 },
          },
          registry: { plainHttp: [reg.host], auth: { existingSecret: SECRET_NAME } },
          metrics: { address: '127.0.0.1', port: metricsPort },
        };
        if (variant.hostPaths) {
          const host = join(dir, 'host');
          values.hostPaths = {
            rulesfilesDir: join(host, 'etc/diginfra'),
            pluginsDir: join(host, 'usr/share/diginfra/plugins'),
            stateDir: join(host, 'var/lib/diginfractl'),
            dirs: { asset: join(host, 'etc/diginfra-assets') },
          };
        } else {
          values.hostPaths = { dirs: { asset: '/etc/diginfra/assets' } };
          // The engine's versions endpoint the embedded values name, on a port of this test.
          engine = createServer((req, res) => {
            engineRequests++;
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ engine_version: '0.40.0' }));
          });
          await new Promise<void>((ok) => engine!.listen(0, '127.0.0.1', ok));
          values.engine = { versionsUrl: `http://127.0.0.1:${(engine.address() as AddressInfo).port}/versions` };
        }
        await mkdir(dir, { recursive: true });
        rendered = await renderPod(dir, values, [join(CHART_DIR, 'ci', variant.valuesFile)]);
        expect(rendered.invariants.followIsNativeSidecar).toBe(!variant.hostPaths);
        volumes = await prepareVolumes(rendered.pod, join(dir, 'volumes'), {
          configMaps: [rendered.configMap],
          secrets: { [SECRET_NAME]: { '.dockerconfigjson': dockerConfig } },
        });
        // The kubelet pulls the image the pod names with its imagePullSecrets.
        const pulled = rendered.install.image!;
        expect(pulled).toBe(`${reg.host}/diginfractl@${image.digest}`);
        await podman(['pull', '--quiet', '--tls-verify=false', '--authfile', authFile, pulled]);
        expect((await inspectImage(pulled)).Id).toBe(image.id);
      }, 120_000);

      afterAll(async () => {
        for (const name of names) await removeContainer(name);
        if (engine) await new Promise<void>((ok) => engine!.close(() => ok()));
      });

      it('init container: exits 0, and the files are on the host side with the pod user as owner and their modes', async () => {
        const { install, config } = { install: rendered.install, config: rendered.invariants.config };
        const sc = securityOf(rendered.pod, install);
        expect(sc.readOnlyRootFilesystem).toBe(true);
        expect(sc.capabilities?.drop).toContain('ALL');
        const name = `diginfractl-e2e-install-${process.pid}-${variant.hostPaths ? 'ds' : 'sidecar'}`;
        const c = startContainer(name, argsFor(install, name));
        const code = await c.exited;
        expect(code, `install exited ${code}:\n${c.stderr()}`).toBe(0);

        const uid = sc.runAsUser ?? 65532;
        const gid = sc.runAsGroup ?? uid;
        const expectFile = async (path: string, mode: number) => {
          const s = await stat(onHost(path));
          expect({ path, uid: s.uid, gid: s.gid, mode: (s.mode & 0o7777).toString(8) }).toEqual({ path, uid, gid, mode: mode.toString(8) });
        };
        expect(await readFile(onHost(posix.join(config.install.rulesfilesDir, RULES_FILE)), 'utf8')).toBe(currentRules);
        await expectFile(posix.join(config.install.rulesfilesDir, RULES_FILE), 0o644);
        expect((await readFile(onHost(posix.join(config.install.pluginsDir, 'libjson.so')))).toString('latin1')).toContain(`json 0.7.0 ${PLATFORM}\n`);
        await expectFile(posix.join(config.install.pluginsDir, 'libjson.so'), 0o755);
        expect(await readFile(onHost(posix.join(config.install.dirs.asset, 'geo.mmdb')))).toEqual(GEO_DATA);
        await expectFile(posix.join(config.install.dirs.asset, 'geo.mmdb'), 0o644);
        await expectFile(config.install.lockfile, 0o644);
        // The blob cache is on the state volume (XDG_CACHE_HOME), so a restarted pod downloads nothing again.
        expect((await readdir(onHost(config.cacheDir), { recursive: true })).some((f) => /sha256/.test(String(f)))).toBe(true);
        await expectOnlyMountPoints(name, install);
      }, 120_000);

      it('sidecar: answers /readyz, swaps in a pushed version, serves /metrics, and stops on SIGTERM with exit 0 within the grace period', async () => {
        const { follow, config } = { follow: rendered.follow, config: rendered.invariants.config };
        const grace = (rendered.pod as { terminationGracePeriodSeconds?: number }).terminationGracePeriodSeconds ?? 30;
        const name = `diginfractl-e2e-follow-${process.pid}-${variant.hostPaths ? 'ds' : 'sidecar'}`;
        const c = startContainer(name, argsFor(follow, name));
        const get = async (path: string) => {
          try {
            const res = await request(`http://127.0.0.1:${metricsPort}${path}`);
            return { status: res.statusCode, body: await res.body.text() };
          } catch {
            return { status: 0, body: '' };
          }
        };
        const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> => {
          for (const deadline = Date.now() + ms; ; await sleep(200)) {
            const v = await probe();
            if (v !== undefined) return v;
            if (Date.now() > deadline || c.child.exitCode !== null) throw new Error(`no ${what}; follow stderr:\n${c.stderr()}`);
          }
        };
        try {
          // The probes the pod spec declares, on the port it declares.
          expect(follow.ports!.find((p) => p.name === 'metrics')!.containerPort).toBe(metricsPort);
          const readiness = (follow.startupProbe ?? follow.readinessProbe).httpGet.path;
          await waitFor(readiness, async () => ((await get(readiness)).status === 200 ? true : undefined));
          expect((await get(follow.livenessProbe.httpGet.path)).status).toBe(200);

          pushedMinor++;
          const version = `1.${pushedMinor}.0`;
          // In embedded mode the engine's versions URL is read before a swap that has a requirement.
          const requirement = variant.hostPaths ? '' : '- required_engine_version: 0.26.0\n';
          const next = `${requirement}- list: diginfra_e2e_image_${pushedMinor}\n  items: [${variant.hostPaths ? 'ds' : 'sidecar'}]\n`;
          await fixture.pushRules(version, next);
          currentRules = next;
          const rules = onHost(posix.join(config.follow.rulesfilesDir, RULES_FILE));
          await waitFor(`the swap to ${version}`, async () => ((await readFile(rules, 'utf8')) === next ? true : undefined));
          const info = new RegExp(`^diginfractl_artifact_info\\{[^}]*version="${version.replace(/\./g, '\\.')}"[^}]*\\} 1$`, 'm');
          const metrics = await waitFor('the new version in /metrics', async () => {
            const body = (await get('/metrics')).body;
            return info.test(body) ? body : undefined;
          });
          expect(metrics).toMatch(/^diginfractl_follow_updates_total\{[^}]*\} [1-9]/m);
          const s = await stat(rules);
          const sc = securityOf(rendered.pod, follow);
          expect({ uid: s.uid, mode: (s.mode & 0o777).toString(8) }).toEqual({ uid: sc.runAsUser ?? 65532, mode: '644' });
          if (!variant.hostPaths) expect(engineRequests, 'the sidecar read the engine versions URL the values name').toBeGreaterThan(0);
        } finally {
          const stopped = await stopContainer(c, grace);
          expect({ code: stopped.code }, c.stderr()).toEqual({ code: 0 });
          expect(stopped.seconds, 'stopped well within the grace period').toBeLessThan(grace);
        }
        expect(c.stderr()).not.toMatch(/EROFS|Cannot find module|"level":50/);
        await expectOnlyMountPoints(name, follow);
      }, 120_000);
    });
  }
});

afterAll(async () => {
  // The pulled names of the test's image (its registry's port changes every run); the built tag stays as
  // the next run's cache.
  if (!image) return;
  const info = await inspectImage(image.id).catch(() => undefined);
  for (const name of info?.RepoDigests ?? []) {
    if (name.startsWith(`${fixture?.reg.host}/`)) await podman(['untag', image.id, name]).catch(() => undefined);
  }
});
