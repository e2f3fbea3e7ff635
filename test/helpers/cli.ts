/**
 * Runs the built CLI (the bundled bin dist/bin/diginfractl.cjs) as a user would: a child process on Node 24, with its own
 * config, cache and credential dirs so the real home is never touched.
 */
import { execFile, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { tempDir } from './fs.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/bin/diginfractl.cjs');
/** The Node 24 binary from the `node` devDependency (the system one may be older). */
export const NODE = join(ROOT, 'node_modules/.bin/node');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A sandbox of XDG dirs; pass its env to every run of one test. */
export async function cliEnv(extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv & { HOME: string }> {
  const home = await tempDir('diginfractl-home-');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('DIGINFRACTL_') && !k.startsWith('XDG_') && k !== 'DOCKER_CONFIG') env[k] = v;
  }
  return {
    ...env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    DOCKER_CONFIG: join(home, '.docker'),
    DIGINFRACTL_CONFIG: join(home, 'diginfractl.yaml'),
    ...extra,
  } as NodeJS.ProcessEnv & { HOME: string };
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(
      NODE,
      [CLI, ...args],
      { env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolvePromise({ code, stdout: stdout.toString(), stderr: stderr.toString() });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** Starts a long-running CLI process (follow); the caller stops it. */
export function spawnCli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  return spawn(NODE, [CLI, ...args], { env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

