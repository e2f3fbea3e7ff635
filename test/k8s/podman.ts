/**
 * podman for the image tests: whether this machine has it, the settings it runs with (the file
 * scripts/podman/containers.conf, as scripts/image.sh uses it), and the image that script builds.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/helm.js';

const run = promisify(execFile);

export const PODMAN_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? join(REPO_ROOT, 'scripts/podman/containers.conf'),
};

/** Why the image tests cannot run here, or undefined when podman and runc answer. */
export function podmanMissing(): string | undefined {
  for (const tool of ['podman', 'runc']) {
    const r = spawnSync(tool, ['--version'], { encoding: 'utf8', timeout: 20_000 });
    if (r.error || r.status !== 0) return `${tool} is not installed (scripts/bootstrap.sh installs it: apt-get install podman runc debootstrap)`;
  }
  return undefined;
}

export async function podman(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return run('podman', args, { env: { ...PODMAN_ENV, ...opts.env }, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
}

export interface BuiltImage {
  /** The local name given with --tag. */
  tag: string;
  id: string;
  /** What the script printed on stdout: the size and contents summary. */
  summary: string;
  /** The digest of the pushed manifest (--digestfile). */
  digest: string;
  seconds: number;
}

/** Runs scripts/image.sh: builds `tag` and pushes it to `destination` with the credentials in `authFile`. */
export async function buildImage(opts: { tag: string; destination: string; authFile: string; digestFile: string }): Promise<BuiltImage> {
  const start = Date.now();
  let stdout: string;
  try {
    ({ stdout } = await run(
      'bash',
      [join(REPO_ROOT, 'scripts/image.sh'), '--tag', opts.tag, '--tls-verify=false', '--digestfile', opts.digestFile, opts.destination],
      { cwd: REPO_ROOT, env: { ...PODMAN_ENV, REGISTRY_AUTH_FILE: opts.authFile }, maxBuffer: 256 * 1024 * 1024 },
    ));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`scripts/image.sh failed: ${e.message.split('\n')[0]}\n${(e.stderr ?? '').split('\n').slice(-40).join('\n')}`);
  }
  const digest = (await readFile(opts.digestFile, 'utf8')).trim();
  const id = (await podman(['image', 'inspect', '--format', '{{.Id}}', opts.tag])).stdout.trim();
  return { tag: opts.tag, id, summary: stdout, digest, seconds: (Date.now() - start) / 1000 };
}

/** `podman image inspect` of one image, parsed. */
export async function inspectImage(ref: string): Promise<{ Id: string; Size: number; Config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; Healthcheck?: unknown; Labels?: Record<string, string>; ExposedPorts?: Record<string, unknown> }; Architecture: string; Os: string; RepoDigests?: string[] }> {
  const { stdout } = await podman(['image', 'inspect', ref]);
  return JSON.parse(stdout)[0];
}
