/**
 * Runs the built CLI (the bundled bin dist/bin/diginfractl.cjs) as a user would: a child process on Node 24, with its own
 * config, cache and credential dirs so the real home is never touched.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

/** Subcommands of `diginfractl GROUP`, read from the built CLI's help. */
export function subcommandsOf(group: string): Set<string> {
  // A bare environment: no user config or XDG dirs of this machine's change what help prints.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), NO_COLOR: '1' };
  const r = spawnSync(NODE, [CLI, group, '--help'], { encoding: 'utf8', timeout: 20_000, env });
  const section = r.stdout.split(/^Commands:\s*$/m)[1] ?? '';
  return new Set([...section.matchAll(/^\s{2}(\w[\w-]*)/gm)].map((m) => m[1]!));
}

/**
 * Fails the calling test file, saying what to do, when the CLI is not built or lacks one of the
 * `GROUP COMMAND`s it runs: such tests fail rather than skip.
 */
export function requireCli(group: string, commands: string[]): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const found = subcommandsOf(group);
  for (const cmd of commands) {
    if (!found.has(cmd)) throw new Error(`${CLI} has no \`${group} ${cmd}\` command: rebuild it (npm run build)`);
  }
}

/** The messages of the CLI's log lines on stderr (JSON lines when not on a terminal), in order. */
export function logMessages(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return String((JSON.parse(l) as { msg?: unknown }).msg);
      } catch {
        return l;
      }
    });
}

/**
 * `stderr` with `-o json`'s error object (`{"error": {...}}`, docs/output.md) written in the text form,
 * `error: <message>` and `hint: <hint>`: for tests that check an error's words whatever the format.
 */
export function errorAsText(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => {
      if (!l.startsWith('{"error":')) return l;
      const { message, hint } = (JSON.parse(l) as { error: { message: string; hint?: string } }).error;
      return `error: ${message}${hint !== undefined ? `\nhint: ${hint}` : ''}`;
    })
    .join('\n');
}
