/**
 * A rendered pod's containers run with podman the way the kubelet runs them: what a test can check on
 * a machine without a cluster.
 *
 * Volumes (prepareVolumes), each backed by a directory of the test (or a tmpfs):
 * - hostPath: the path itself (tests render the chart with hostPaths in their temp dir, mounted at the
 *   same path inside); DirectoryOrCreate makes it 0755 as the kubelet does, Directory must exist;
 * - emptyDir: a directory shared by the pod's containers, 0777, or a tmpfs when it has a sizeLimit or
 *   medium Memory (the limit then holds as the kubelet's eviction would hold it);
 * - configMap and secret: the kubelet's atomic-writer layout, read-only: the files in a timestamped
 *   `..YYYY_MM_DD_hh_mm_ss.N` directory, `..data` a symlink to it, and each top-level name a symlink
 *   into `..data`, so that an update is one rename; files 0644 or defaultMode;
 * - with a pod fsGroup, emptyDir, configMap and secret volumes belong to that group (setgid dirs).
 *
 * Containers (runArgs): the image's ENTRYPOINT (or `command`) with the container's args and env;
 * runAsUser/runAsGroup (pod, then container), fsGroup and supplementalGroups as extra groups;
 * readOnlyRootFilesystem with nothing else writable (podman's own /tmp tmpfs off); capabilities;
 * allowPrivilegeEscalation false as no-new-privileges; the grace period as the stop timeout. The test
 * chooses the network: the host's, to reach a registry on loopback.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import type { Container, K8sObject, PodSpec } from './support.js';
import { PODMAN_ENV } from './podman.js';

const run = promisify(execFile);

/** How one pod volume reaches podman. */
export type VolumeSource = { type: 'bind'; source: string; readOnly: boolean } | { type: 'tmpfs'; sizeBytes?: number };

/** The content of the Secrets the pod names (they are not rendered by the chart): name -> key -> data. */
export type SecretData = Record<string, Record<string, string>>;

/** Kubernetes quantities as tmpfs sizes (64Mi, 1Gi, 500M). */
function bytes(quantity: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (!m) throw new Error(`unsupported quantity ${quantity}`);
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** The pod-level security context merged with the container's (the container wins). */
export function securityOf(pod: PodSpec, c: Container): {
  runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; fsGroup?: number; supplementalGroups?: number[];
  readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
} {
  return { ...(pod.securityContext ?? {}), ...(c.securityContext ?? {}) };
}

/** Writes files the way the kubelet's atomic writer does (see above). */
async function atomicWriterLayout(dir: string, files: Record<string, string>, mode: number, group: number | undefined): Promise<void> {
  const now = new Date();
  const stamp = `..${now.toISOString().slice(0, 19).replace(/[-T:]/g, '_')}.${process.hrtime.bigint() % 1_000_000_000n}`;
  const data = join(dir, stamp);
  await mkdir(data, { recursive: true, mode: 0o755 });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(posix.dirname(join(data, path)), { recursive: true, mode: 0o755 });
    await writeFile(join(data, path), content, { mode });
    await chmod(join(data, path), mode);
  }
  await symlink(stamp, join(dir, '..data'));
  for (const top of new Set(Object.keys(files).map((p) => p.split('/')[0]!))) await symlink(posix.join('..data', top), join(dir, top));
  if (group !== undefined) await chownTree(dir, group, false);
}

/** Gives a tree to `group` as the kubelet does for fsGroup: group-writable setgid dirs when `writable`. */
async function chownTree(path: string, group: number, writable: boolean): Promise<void> {
  const s = await lstat(path);
  if (s.isSymbolicLink()) return;
  await chown(path, s.uid, group);
  if (!s.isDirectory()) {
    await chmod(path, (s.mode & 0o7777) | (writable ? 0o060 : 0o040));
    return;
  }
  await chmod(path, (s.mode & 0o7777) | 0o2000 | (writable ? 0o070 : 0o050));
  for (const entry of await readdir(path)) await chownTree(join(path, entry), group, writable);
}

/** Backs every volume of `pod` under `dir` (see above); returns them by name. */
export async function prepareVolumes(pod: PodSpec, dir: string, from: { configMaps: K8sObject[]; secrets: SecretData }): Promise<Map<string, VolumeSource>> {
  const fsGroup = pod.securityContext?.fsGroup as number | undefined;
  const out = new Map<string, VolumeSource>();
  for (const v of pod.volumes ?? []) {
    const own = join(dir, v.name);
    if (v.hostPath) {
      const type = v.hostPath.type ?? '';
      if (type === 'DirectoryOrCreate') await mkdir(v.hostPath.path, { recursive: true, mode: 0o755 });
      else if (type === 'Directory') {
        if (!(await stat(v.hostPath.path)).isDirectory()) throw new Error(`hostPath ${v.hostPath.path} is not a directory`);
      } else throw new Error(`hostPath type "${type}" is not supported by these tests`);
      out.set(v.name, { type: 'bind', source: v.hostPath.path, readOnly: false });
    } else if (v.emptyDir) {
      if (v.emptyDir.sizeLimit !== undefined || v.emptyDir.medium === 'Memory') {
        out.set(v.name, { type: 'tmpfs', ...(v.emptyDir.sizeLimit !== undefined && { sizeBytes: bytes(v.emptyDir.sizeLimit) }) });
        continue;
      }
      await mkdir(own, { recursive: true });
      await chmod(own, 0o777);
      if (fsGroup !== undefined) await chownTree(own, fsGroup, true);
      out.set(v.name, { type: 'bind', source: own, readOnly: false });
    } else if (v.configMap || v.secret) {
      const kind = v.configMap ? 'ConfigMap' : 'Secret';
      const name: string = v.configMap ? v.configMap.name : v.secret.secretName;
      const data: Record<string, string> | undefined = v.configMap
        ? from.configMaps.find((o) => o.metadata.name === name)?.data
        : from.secrets[name];
      if (!data) throw new Error(`${kind} ${name} of volume ${v.name} is not known to the test`);
      const spec = v.configMap ?? v.secret;
      const items: { key: string; path: string; mode?: number }[] = spec.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      const files: Record<string, string> = {};
      for (const item of items) {
        if (data[item.key] === undefined) throw new Error(`${kind} ${name} has no key ${item.key}`);
        files[item.path] = data[item.key]!;
      }
      await mkdir(own, { recursive: true, mode: 0o755 });
      await atomicWriterLayout(own, files, spec.defaultMode ?? 0o644, fsGroup);
      out.set(v.name, { type: 'bind', source: own, readOnly: true });
    } else {
      throw new Error(`volume ${v.name}: only hostPath, emptyDir, configMap and secret volumes are supported by these tests`);
    }
  }
  return out;
}

export interface RunOptions {
  /** The container's name for podman (unique on this machine). */
  name: string;
  /** The image to run (the container's `image`, already pulled). */
  image: string;
  volumes: Map<string, VolumeSource>;
  /** The container's env, resolved (pod-fixture.ts containerEnv). */
  env: Record<string, string>;
  /** Run in the host's network namespace (to reach a registry on loopback). */
  hostNetwork: boolean;
}

/** `podman run` arguments for container `c` of `pod` (see above). */
export function runArgs(pod: PodSpec & { terminationGracePeriodSeconds?: number; hostNetwork?: boolean }, c: Container & { workingDir?: string }, opts: RunOptions): string[] {
  const sc = securityOf(pod, c);
  if (sc.runAsNonRoot && sc.runAsUser === 0) throw new Error(`${c.name}: runAsNonRoot with runAsUser 0: the kubelet refuses to start it`);
  const args = ['run', '--name', opts.name, '--pull', 'never'];
  if (opts.hostNetwork || pod.hostNetwork) args.push('--network', 'host');
  if (sc.runAsUser !== undefined) args.push('--user', sc.runAsGroup !== undefined ? `${sc.runAsUser}:${sc.runAsGroup}` : String(sc.runAsUser));
  for (const g of [...(sc.fsGroup !== undefined ? [sc.fsGroup] : []), ...(sc.supplementalGroups ?? [])]) args.push('--group-add', String(g));
  if (sc.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
  if (sc.privileged) args.push('--privileged');
  for (const cap of sc.capabilities?.drop ?? []) args.push('--cap-drop', cap);
  for (const cap of sc.capabilities?.add ?? []) args.push('--cap-add', cap);
  if (sc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  for (const [k, v] of Object.entries(opts.env)) args.push('--env', `${k}=${v}`);
  for (const m of c.volumeMounts ?? []) {
    if (m.subPath !== undefined) throw new Error(`${c.name}: subPath mounts are not supported by these tests`);
    const v = opts.volumes.get(m.name);
    if (!v) throw new Error(`${c.name} mounts ${m.name}, which is not a volume of the pod`);
    if (v.type === 'tmpfs') {
      args.push('--mount', `type=tmpfs,destination=${m.mountPath},tmpfs-mode=1777${v.sizeBytes !== undefined ? `,tmpfs-size=${v.sizeBytes}` : ''}`);
    } else {
      args.push('--mount', `type=bind,source=${v.source},destination=${m.mountPath}${v.readOnly || m.readOnly ? ',ro=true' : ''}`);
    }
  }
  args.push('--stop-timeout', String(pod.terminationGracePeriodSeconds ?? 30));
  if (c.workingDir) args.push('--workdir', c.workingDir);
  if (c.command) args.push('--entrypoint', JSON.stringify(c.command));
  args.push(opts.image, ...(c.args ?? []));
  return args;
}

export interface PodmanContainer {
  name: string;
  child: ChildProcess;
  /** What the container wrote to stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  /** The container's exit code (the attached `podman run` exits with it). */
  exited: Promise<number | null>;
}

/** Starts `podman run` attached, as runArgs says. */
export function startContainer(name: string, args: string[]): PodmanContainer {
  const child = spawn('podman', args, { env: PODMAN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => ok(code));
  });
  return { name, child, stdout: () => out, stderr: () => err, exited };
}

/** `podman stop`: SIGTERM, then SIGKILL once `graceSeconds` have passed. */
export async function stopContainer(c: PodmanContainer, graceSeconds: number): Promise<{ code: number | null; seconds: number }> {
  const start = Date.now();
  await run('podman', ['stop', '--time', String(graceSeconds), c.name], { env: PODMAN_ENV });
  const code = await c.exited;
  return { code, seconds: (Date.now() - start) / 1000 };
}

/** What the container changed in its root filesystem (podman diff: `A /path`, `C /path`, `D /path`). */
export async function rootChanges(name: string): Promise<string[]> {
  const { stdout } = await run('podman', ['diff', name], { env: PODMAN_ENV });
  return stdout.split('\n').filter(Boolean);
}

export async function removeContainer(name: string): Promise<void> {
  await run('podman', ['rm', '--force', '--ignore', name], { env: PODMAN_ENV }).catch(() => undefined);
}
