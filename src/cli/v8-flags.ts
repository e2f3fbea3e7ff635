/**
 * V8 flags a command sets for its own process before anything else loads (src/cli/main.ts).
 *
 * `artifact follow` lives for months and does little: a HEAD per ref now and then. Its JavaScript can
 * stay in V8's interpreter and baseline code, so the optimizing compilers (TurboFan, Maglev, and the
 * tier-up of undici's WebAssembly HTTP parser) are off for that process: they never touch their
 * ~8 MB of code in the node binary nor allocate compile-time memory (idle RSS, docs/benchmarks.md).
 * The other commands, which stream, hash and unpack large layers, keep them.
 */
export const LEAN_JIT_FLAGS = ['--no-turbofan', '--no-maglev', '--no-wasm-tier-up'] as const;

/** The flags for the command in `argv` (process.argv: node, script, args...). */
export function v8FlagsFor(argv: readonly string[]): readonly string[] {
  const i = argv.indexOf('artifact', 2);
  return i >= 0 && argv[i + 1] === 'follow' ? LEAN_JIT_FLAGS : [];
}
