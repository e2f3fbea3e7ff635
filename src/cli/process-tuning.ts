/**
 * Every setting a command makes for its own process (V8 flags, glibc's malloc settings), decided here
 * and applied by src/cli/main.ts before anything else loads. The table in docs/benchmarks.md
 * ("Process settings") has what each one measurably buys.
 *
 * Every command, through the bin's shebang (`node --max-semi-space-size=1`): a 1 MB young
 * generation, so V8 collects streamed network buffers promptly. With the default, a pull's RSS grows
 * with the layer before the first scavenge (bench/pull.mjs: 141 MB instead of 91 MB for 100 MB).
 * Only a process's start can set it, and a re-exec would cost a short command a second Node start.
 *
 * Every command, at run time: undici's HTTP parser (llhttp) is WebAssembly. V8 compiles it with its
 * baseline compiler (Liftoff) and, once it has run a little, recompiles its big state-machine
 * function with TurboFan in the background: 130 ms of CPU and 23 MB of compile-time memory, for a
 * parser whose work per response is small. A short command then waits for that job as it exits.
 * Liftoff's code is enough (WASM_BASELINE_FLAGS).
 *
 * `artifact follow` lives for months and does little: a HEAD per ref now and then. It re-executes
 * itself once at start (same PID, stdio and arguments) with FOLLOW_NODE_FLAGS on node's command line,
 * so they hold from its first instruction, and FOLLOW_MALLOC_ENV, which glibc reads only at start:
 * - `--expose-gc`: the agent collects its whole heap every 30 s (artifact-follow.ts), so what the
 *   1 MB young generation promotes does not pile up in the old generation;
 * - the young generation of every command, for when it is started as `node diginfractl.cjs`;
 * - no optimizing compilers (TurboFan, Maglev): its JavaScript stays in V8's interpreter and baseline
 *   code, and the agent never pages in their ~8 MB of code in the node binary;
 * - one malloc arena (memory freed by the thread pool's threads is reused, not kept in an arena per
 *   thread), and mmap for blocks of 64 KiB and more (what socket reads and downloads held goes back
 *   to the system when freed). Not for the other commands: a fresh mapping for every 64 KiB socket
 *   read costs a 100 MB pull ~0.2 s.
 * A setting the user made (the same V8 flag, either way, in node's options or NODE_OPTIONS; the
 * malloc variable) stands. If the re-exec cannot be made, the agent runs without the tuning.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { setFlagsFromString } from 'node:v8';

export const WASM_BASELINE_FLAGS = ['--no-wasm-dynamic-tiering', '--no-wasm-tier-up'] as const;
export const LEAN_JIT_FLAGS = ['--no-turbofan', '--no-maglev', ...WASM_BASELINE_FLAGS] as const;
const YOUNG_GENERATION_FLAG = '--max-semi-space-size=1';
export const FOLLOW_NODE_FLAGS = ['--expose-gc', YOUNG_GENERATION_FLAG, ...LEAN_JIT_FLAGS] as const;
export const FOLLOW_MALLOC_ENV = { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '65536' } as const;

function isFollow(argv: readonly string[]): boolean {
  const i = argv.indexOf('artifact', 2);
  return i >= 0 && argv[i + 1] === 'follow';
}

/** The V8 flags set at run time for the command in `argv` (process.argv: node, script, args...). */
export function v8FlagsFor(argv: readonly string[]): readonly string[] {
  return isFollow(argv) ? LEAN_JIT_FLAGS : WASM_BASELINE_FLAGS;
}

/** The V8 option a flag sets: `--no-maglev`, `--maglev` and `--max_semi_space_size=4` name `maglev` and `max-semi-space-size`. */
function optionName(flag: string): string {
  return flag.replace(/^--?/, '').split('=')[0]!.replaceAll('_', '-').replace(/^no-/, '');
}

export interface Reexec {
  /** Node's options for the new program: this one's, then the flags it lacked. */
  execArgv: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How to re-execute this process, or undefined to run as it is: `follow` started without one of its
 * flags or malloc settings gets them. Once all are there (set by the re-exec or by the user), nothing
 * more is done (no loop).
 */
export function reexecFor(argv: readonly string[], execArgv: readonly string[], env: NodeJS.ProcessEnv): Reexec | undefined {
  if (!isFollow(argv)) return undefined;
  const userSet = new Set([...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((f) => f.startsWith('-')).map(optionName));
  const missingFlags = FOLLOW_NODE_FLAGS.filter((flag) => !userSet.has(optionName(flag)));
  const missingEnv = Object.entries(FOLLOW_MALLOC_ENV).filter(([name]) => env[name] === undefined);
  if (missingFlags.length === 0 && missingEnv.length === 0) return undefined;
  return { execArgv: [...execArgv, ...missingFlags], env: { ...env, ...Object.fromEntries(missingEnv) } };
}

/** Node's options for a child node process of the agent (the rules check): its own, less the agent's lean V8 flags. */
export function childExecArgv(execArgv: readonly string[]): string[] {
  return execArgv.filter((flag) => !(LEAN_JIT_FLAGS as readonly string[]).includes(flag));
}

/**
 * Tunes this process for its command: re-executes `follow` (never returns then), and sets the
 * command's V8 flags at run time (for a `follow` that could not be re-executed, its JIT flags at least).
 */
export function tuneProcess(): void {
  const reexec = reexecFor(process.argv, process.execArgv, process.env);
  if (reexec) {
    const scriptAndArgs = process.argv.slice(1);
    const refused = process.execve === undefined ? 'no process.execve in this Node' : whyExecWouldFail(process.execPath, reexec.execArgv, scriptAndArgs, reexec.env);
    if (refused === undefined) process.execve?.(process.execPath, [process.execPath, ...reexec.execArgv, ...scriptAndArgs], reexec.env);
    process.emitWarning(`artifact follow runs without its memory settings: cannot re-execute ${process.execPath} (${refused})`, { code: 'DIGINFRACTL_NO_TUNING' });
  }
  for (const flag of v8FlagsFor(process.argv)) setFlagsFromString(flag);
}

/**
 * Why re-executing this program as `path nodeOptions... scriptAndArgs...` with `env` would fail, or
 * undefined when it works. process.execve does not throw on a failed execve(2): Node 24 aborts the
 * process. So the same exec runs first in a child, with `--version` before the script: a node that
 * starts, accepts every option and prints this Node's version proves it. Without /proc (a bare
 * chroot) process.execPath is just "node", which execve would not look up in PATH.
 */
export function whyExecWouldFail(path: string, nodeOptions: readonly string[], scriptAndArgs: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  try {
    if (!isAbsolute(path) || !statSync(path).isFile()) return 'not an absolute path to a file';
    accessSync(path, constants.X_OK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
  const probe = process.getBuiltinModule('node:child_process').spawnSync(path, [...nodeOptions, '--version', ...scriptAndArgs], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  });
  if (probe.error) return (probe.error as NodeJS.ErrnoException).code ?? probe.error.message;
  if (probe.status === 0 && probe.stdout.trim() === process.version) return undefined;
  return `--version gave ${probe.signal ?? `exit ${probe.status}`}${probe.stderr.trim() ? `: ${probe.stderr.trim().split('\n')[0]}` : ''}`;
}
