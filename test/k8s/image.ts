/**
 * The runtime image of the Dockerfile, assembled without a container engine, and a way to run a
 * container of the rendered pod in it as a container runtime would.
 *
 * The image (what the Dockerfile's runtime stage holds, with the node base image reduced to what
 * Node needs):
 * - Node 24 at /usr/local/bin/node, where the node images put it (the binary of the `node`
 *   devDependency, the official linux build), with the shared libraries it links and /usr/bin/env,
 *   which the bin's shebang runs;
 * - /app/dist, /app/package.json and /app/node_modules from `npm ci --omit=dev --ignore-scripts`, the
 *   deps stage's own command, from npm's cache (the registry only for what the cache lacks);
 * - the runtime stage's RUN step: the diginfractl user and group (65532), the bin symlinked to
 *   /usr/local/bin/diginfractl, /etc/diginfractl and /var/lib/diginfractl/{cache,config} owned by 65532.
 *
 * A container runs in a private mount namespace: the image bind-mounted read-only over itself
 * (readOnlyRootFilesystem), /proc and the default device nodes, the pod's volumes bind-mounted at
 * their mountPaths (parents first; mount points made as runc makes them), then chroot, then the
 * pod's security context applied by setpriv (its UID and GID, every capability dropped, no new
 * privileges), then the image ENTRYPOINT with the container's args and only the image's and the
 * container's env. setpriv sits in /.runtime, outside the image's own paths, as runc's code sits
 * outside a container.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, copyFile, cp, mkdir, mkdtemp, realpath, rename, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/helm.js';

const run = promisify(execFile);

/** The image's ENV (Dockerfile) and the PATH of the node base image. */
export const IMAGE_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  NODE_ENV: 'production',
  HOME: '/tmp',
  XDG_CACHE_HOME: '/var/lib/diginfractl/cache',
  XDG_CONFIG_HOME: '/var/lib/diginfractl/config',
};
export const IMAGE_UID = 65532;

/** Copies `file` and the shared libraries it links (ldd) to the same paths under `root`. */
async function copyWithLibraries(root: string, file: string, as: string = file): Promise<void> {
  const { stdout } = await run('ldd', [file]);
  const libs = [...stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
  for (const path of [...libs, as]) {
    const to = join(root, path);
    await mkdir(dirname(to), { recursive: true });
    await copyFile(path === as ? file : await realpath(path), to);
    await chmod(to, 0o755);
  }
}

/** Builds the image's root filesystem in a new directory under `parent`; returns its path. */
export async function assembleImage(parent: string): Promise<string> {
  const root = await mkdtemp(join(parent, 'image-'));
  await chmod(root, 0o755);
  // The node base image: node, the libraries it needs, env for the shebang, a world-writable /tmp.
  await copyWithLibraries(root, await realpath(join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')), '/usr/local/bin/node');
  await copyWithLibraries(root, '/usr/bin/env');
  await mkdir(join(root, 'tmp'), { mode: 0o1777 });
  await chmod(join(root, 'tmp'), 0o1777);
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\n');

  // The deps stage: production dependencies only, by the Dockerfile's own command.
  const deps = await mkdtemp(join(parent, 'deps-'));
  for (const f of ['package.json', 'package-lock.json']) await copyFile(join(REPO_ROOT, f), join(deps, f));
  await run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: deps, env: { ...process.env, npm_config_loglevel: 'error' } });

  // The runtime stage: COPY node_modules, dist, package.json into /app, then its RUN step.
  const app = join(root, 'app');
  await mkdir(app);
  await rename(join(deps, 'node_modules'), join(app, 'node_modules'));
  await cp(join(REPO_ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  await copyFile(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
  await writeFile(join(root, 'etc/passwd'), `diginfractl:x:${IMAGE_UID}:${IMAGE_UID}::/nonexistent:/usr/sbin/nologin\n`, { flag: 'a' });
  await writeFile(join(root, 'etc/group'), `diginfractl:x:${IMAGE_UID}:\n`, { flag: 'a' });
  await chmod(join(app, 'dist/bin/diginfractl.cjs'), 0o755);
  await symlink('/app/dist/bin/diginfractl.cjs', join(root, 'usr/local/bin/diginfractl'));
  for (const d of ['etc/diginfractl', 'var/lib/diginfractl/cache', 'var/lib/diginfractl/config']) await mkdir(join(root, d), { recursive: true });
  for (const d of ['var/lib/diginfractl', 'var/lib/diginfractl/cache', 'var/lib/diginfractl/config']) await chown(join(root, d), IMAGE_UID, IMAGE_UID);

  // The runtime's own tool, outside the image's paths.
  await copyWithLibraries(root, '/usr/bin/setpriv', '/.runtime/setpriv');
  return root;
}

export interface Mount {
  /** Directory on this machine. */
  source: string;
  /** mountPath in the container. */
  target: string;
  readOnly?: boolean;
}

export interface ContainerRun {
  args: string[];
  /** The container's env (the image's ENV is added under it). */
  env: Record<string, string>;
  mounts: Mount[];
  /** runAsUser / runAsGroup of the security context. */
  uid: number;
  gid: number;
  /** Mount /proc, as every runtime does (default true); false shows how the bin copes without it. */
  proc?: boolean;
}

/** The device nodes a runtime gives every container (runc's defaults), bound from this machine's. */
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Starts the image ENTRYPOINT (`diginfractl`) with the container's args, as described above. */
export async function startInImage(root: string, c: ContainerRun): Promise<ChildProcess> {
  // Mount points must exist before the image becomes read-only.
  for (const m of c.mounts) await mkdir(join(root, m.target), { recursive: true });
  await mkdir(join(root, 'proc'), { recursive: true });
  await mkdir(join(root, 'dev'), { recursive: true });
  for (const d of DEVICES) await writeFile(join(root, 'dev', d), '', { flag: 'a' });
  const env = { ...IMAGE_ENV, ...c.env };
  // Parents before children, as a runtime orders them: /tmp must not hide a hostPath under /tmp.
  const mounts = [...c.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  const script = [
    'set -e',
    `mount --bind ${quote(root)} ${quote(root)}`,
    `mount -o remount,bind,ro ${quote(root)}`,
    ...(c.proc === false ? [] : [`mount -t proc proc ${quote(join(root, 'proc'))}`]),
    ...DEVICES.map((d) => `mount --bind /dev/${d} ${quote(join(root, 'dev', d))}`),
    ...mounts.flatMap((m) => [
      // A mount point inside an earlier mount (a hostPath under /tmp) is made there, as runc does.
      `mkdir -p ${quote(join(root, m.target))}`,
      `mount --bind ${quote(m.source)} ${quote(join(root, m.target))}`,
      ...(m.readOnly ? [`mount -o remount,bind,ro ${quote(join(root, m.target))}`] : []),
    ]),
    [
      'exec chroot', quote(root),
      '/.runtime/setpriv', `--reuid=${c.uid}`, `--regid=${c.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs',
      '/usr/bin/env', '-i', ...Object.entries(env).map(([k, v]) => quote(`${k}=${v}`)),
      'diginfractl', ...c.args.map(quote),
    ].join(' '),
  ].join('\n');
  return spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a container to its end. */
export async function runInImage(root: string, c: ContainerRun): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = await startInImage(root, c);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((ok) => child.once('exit', (n) => ok(n)));
  return { code, stdout, stderr };
}

/** Throws, saying what is missing, unless this machine lets the tests make mount namespaces and chroot (root, as CI runs). */
export async function requireImageRuntime(): Promise<void> {
  try {
    await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind / / && chroot / true']);
  } catch (err) {
    throw new Error(`the image tests need root (mount namespaces, bind mounts, chroot): ${(err as Error).message.split('\n')[0]}`);
  }
}
