/**
 * V8 flags a command sets for its own process before anything else loads (src/cli/main.ts).
 *
 * Every command: undici's HTTP parser (llhttp) is WebAssembly. V8 compiles it with its baseline
 * compiler (Liftoff) and, once it has run a little, recompiles its big state-machine function with
 * TurboFan in the background: 130 ms of CPU and 23 MB of compile-time memory, for a parser whose work
 * per response is small (headers; body bytes pass through as spans). A short command then waits for
 * that job as it exits (~90 ms after a 1 KB pull). Liftoff's code is enough (docs/benchmarks.md).
 *
 * `artifact follow` lives for months and does little: a HEAD per ref now and then. Its JavaScript can
 * stay in V8's interpreter and baseline code too, so the optimizing compilers (TurboFan, Maglev) are
 * off for that process: they never touch their ~8 MB of code in the node binary nor allocate
 * compile-time memory (idle RSS, docs/benchmarks.md). The other commands, which stream, hash and
 * unpack large layers, keep them for JavaScript.
 */
export const WASM_BASELINE_FLAGS = ['--no-wasm-dynamic-tiering', '--no-wasm-tier-up'] as const;
export const LEAN_JIT_FLAGS = ['--no-turbofan', '--no-maglev', ...WASM_BASELINE_FLAGS] as const;

/** The flags for the command in `argv` (process.argv: node, script, args...). */
export function v8FlagsFor(argv: readonly string[]): readonly string[] {
  const i = argv.indexOf('artifact', 2);
  return i >= 0 && argv[i + 1] === 'follow' ? LEAN_JIT_FLAGS : WASM_BASELINE_FLAGS;
}
