/**
 * What a command tunes in its own process before anything else loads (src/cli/main.ts): V8 flags,
 * and for `artifact follow` glibc's malloc settings. docs/benchmarks.md has the measurements.
 *
 * Every command: undici's HTTP parser (llhttp) is WebAssembly. V8 compiles it with its baseline
 * compiler (Liftoff) and, once it has run a little, recompiles its big state-machine function with
 * TurboFan in the background: 130 ms of CPU and 23 MB of compile-time memory, for a parser whose work
 * per response is small (headers; body bytes pass through as spans). A short command then waits for
 * that job as it exits (~90 ms after a 1 KB pull). Liftoff's code is enough.
 *
 * `artifact follow` lives for months and does little: a HEAD per ref now and then.
 * - Its JavaScript can stay in V8's interpreter and baseline code too, so the optimizing compilers
 *   (TurboFan, Maglev) are off for that process: they never touch their ~8 MB of code in the node
 *   binary nor allocate compile-time memory. The other commands, which stream, hash and unpack large
 *   layers, keep them for JavaScript.
 * - glibc serves blocks of 64 KiB and more (socket reads, the buffers of a download) with mmap, so
 *   what they held goes back to the system when freed: -3 MB of idle RSS. Only at a process's start
 *   can that be set, so the agent re-executes itself once with it (its short-lived children, the
 *   rules check and --validate-cmd, inherit it). Not for the other commands: a
 *   fresh mapping, page faults and zeroing for every 64 KiB socket read cost a 100 MB pull ~0.2 s.
 * - The re-executed agent gets its V8 flags on node's command line, so they hold from its first
 *   instruction: flags set at run time come after Node's own start-up, which with a long install
 *   path already optimizes its path functions (seen in CI). The rules check, a child node process,
 *   is started without them (childExecArgv).
 */
export const WASM_BASELINE_FLAGS = ['--no-wasm-dynamic-tiering', '--no-wasm-tier-up'] as const;
export const LEAN_JIT_FLAGS = ['--no-turbofan', '--no-maglev', ...WASM_BASELINE_FLAGS] as const;
export const FOLLOW_MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '65536' } as const;

function isFollow(argv: readonly string[]): boolean {
  const i = argv.indexOf('artifact', 2);
  return i >= 0 && argv[i + 1] === 'follow';
}

/** The flags for the command in `argv` (process.argv: node, script, args...). */
export function v8FlagsFor(argv: readonly string[]): readonly string[] {
  return isFollow(argv) ? LEAN_JIT_FLAGS : WASM_BASELINE_FLAGS;
}

export interface Reexec {
  /** Node's options for the new program: this one's, then the V8 flags it lacked. */
  execArgv: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * How to re-execute this process, or undefined to run as it is: `follow` started without its V8
 * flags on node's command line or without the malloc settings gets them. A malloc value the user set
 * is kept; once both are there, nothing more is done (no loop).
 */
export function reexecFor(argv: readonly string[], execArgv: readonly string[], env: NodeJS.ProcessEnv): Reexec | undefined {
  if (!isFollow(argv)) return undefined;
  const missingFlags = LEAN_JIT_FLAGS.filter((flag) => !execArgv.includes(flag));
  const needsMalloc = env.MALLOC_MMAP_THRESHOLD_ === undefined;
  if (missingFlags.length === 0 && !needsMalloc) return undefined;
  return { execArgv: [...execArgv, ...missingFlags], env: needsMalloc ? { ...env, ...FOLLOW_MALLOC_ENV } : env };
}

/** Node's options for a child node process of the agent (the rules check): its own, less the agent's lean V8 flags. */
export function childExecArgv(execArgv: readonly string[]): string[] {
  return execArgv.filter((flag) => !(LEAN_JIT_FLAGS as readonly string[]).includes(flag));
}
