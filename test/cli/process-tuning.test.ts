/**
 * Per-command process tuning (src/cli/process-tuning.ts): which command gets which V8 flags and malloc
 * settings, and that they take effect in the bin (V8 ignores some flags once it has started; these
 * are set at run time, in src/cli/main.ts; the malloc settings need a re-exec).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FOLLOW_MALLOC_ENV, LEAN_JIT_FLAGS, WASM_BASELINE_FLAGS, childExecArgv, reexecFor, v8FlagsFor } from '../../src/cli/process-tuning.js';
import { CLI, NODE, ROOT, cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const argv = (...args: string[]) => ['/usr/bin/node', '/app/dist/bin/diginfractl.cjs', ...args];

describe('per-command process tuning', () => {
  it('artifact follow runs without the optimizing compilers, with or without global options first', () => {
    expect(v8FlagsFor(argv('artifact', 'follow', 'ghcr.io/x/y:1'))).toEqual(LEAN_JIT_FLAGS);
    expect(v8FlagsFor(argv('--config', '/etc/d.yaml', 'artifact', 'follow', '--once'))).toEqual(LEAN_JIT_FLAGS);
    expect(LEAN_JIT_FLAGS).toEqual(['--no-turbofan', '--no-maglev', '--no-wasm-dynamic-tiering', '--no-wasm-tier-up']);
  });

  it('every other command keeps them for JavaScript, and compiles the WebAssembly HTTP parser once, with Liftoff', () => {
    expect(WASM_BASELINE_FLAGS).toEqual(['--no-wasm-dynamic-tiering', '--no-wasm-tier-up']);
    for (const args of [['repo', 'pull', 'x'], ['artifact', 'install', 'follow'], ['artifact', 'search', 'follow'], ['--help'], []]) {
      expect(v8FlagsFor(argv(...args)), args.join(' ')).toEqual(WASM_BASELINE_FLAGS);
    }
  });

  it("only artifact follow re-executes itself, with its V8 flags on node's command line and mmap for large blocks", () => {
    expect(FOLLOW_MALLOC_ENV).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
    const shebang = ['--max-semi-space-size=1', '--expose-gc'];
    expect(reexecFor(argv('artifact', 'follow', 'x'), shebang, { PATH: '/bin' })).toEqual({
      execArgv: [...shebang, ...LEAN_JIT_FLAGS],
      env: { PATH: '/bin', MALLOC_MMAP_THRESHOLD_: '65536' },
    });
    expect(reexecFor(argv('--log-level', 'debug', 'artifact', 'follow'), [], {})).toEqual({ execArgv: [...LEAN_JIT_FLAGS], env: { MALLOC_MMAP_THRESHOLD_: '65536' } });
    // The user's malloc value stands; only the missing flags are added.
    expect(reexecFor(argv('artifact', 'follow', 'x'), ['--no-maglev'], { MALLOC_MMAP_THRESHOLD_: '131072' })).toEqual({
      execArgv: ['--no-maglev', '--no-turbofan', '--no-wasm-dynamic-tiering', '--no-wasm-tier-up'],
      env: { MALLOC_MMAP_THRESHOLD_: '131072' },
    });
    // Once re-executed (or started so by the user), never again: no loop.
    const after = reexecFor(argv('artifact', 'follow', 'x'), shebang, {})!;
    expect(reexecFor(argv('artifact', 'follow', 'x'), after.execArgv, after.env)).toBeUndefined();
    for (const args of [['repo', 'pull', 'x'], ['artifact', 'install', 'follow'], ['--help'], []]) {
      expect(reexecFor(argv(...args), [], {}), args.join(' ')).toBeUndefined();
    }
  });

  it("the agent's rules check (a child node process) gets node's options without the agent's lean V8 flags", () => {
    expect(childExecArgv(['--max-semi-space-size=1', '--expose-gc', ...LEAN_JIT_FLAGS, '--trace-opt'])).toEqual(['--max-semi-space-size=1', '--expose-gc', '--trace-opt']);
  });
});

/** Runs the bin with V8's tracing flags first on Node's command line; the bin's own flags come later. */
function runTraced(trace: string[], args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(NODE, [...trace, CLI, ...args], { env, cwd: ROOT, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('the flags take effect in the bin (traced against a real registry)', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let ref: string;
  let dir: string;
  beforeAll(async () => {
    reg = await startRegistry();
    env = await cliEnv();
    dir = await mkdtemp(join(tmpdir(), 'process-tuning-'));
    const file = join(dir, 'flags_rules.yaml');
    await writeFile(file, '- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n');
    ref = `${reg.host}/rules/flags:1.0.0`;
    const push = await runCli(['repo', 'push', ref, file, '--type', 'rulesfile', '--version', '1.0.0', '--plain-http'], { env });
    expect(push.stderr).toBe('');
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it("repo pull compiles undici's parser with Liftoff only: no TurboFan job for the process to wait for at exit", async () => {
    const pull = await runTraced(['--trace-wasm-compilation-times'], ['repo', 'pull', ref, '--dest', join(dir, 'pulled'), '--plain-http'], env);
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain('flags_rules.yaml');
    expect(pull.stdout).toMatch(/using Liftoff/);
    expect(pull.stdout).not.toMatch(/using TurboFan/);
  });

  it('artifact follow optimizes nothing, JavaScript or WebAssembly, once it runs the agent', async () => {
    const follow = await runTraced(
      ['--trace-opt', '--trace-wasm-compilation-times'],
      ['artifact', 'follow', ref, '--once', '--rulesfiles-dir', join(dir, 'rules'), '--state-dir', join(dir, 'state'), '--plain-http', '--engine-version', '0.60.0'],
      env,
    );
    expect(follow.stderr).not.toContain('error:');
    expect(follow.code).toBe(0);
    // The first process, before it re-executes itself, runs Node's start-up without the flags: with a
    // long install path that optimizes Node's path functions (seen in CI). The re-executed agent has
    // them on its command line (checked in the next test); from its loading of undici on, nothing.
    const agent = follow.stdout.slice(follow.stdout.search(/using Liftoff/));
    expect(agent).toMatch(/using Liftoff/);
    expect(agent).not.toMatch(/using TurboFan|target (MAGLEV|TURBOFAN)|for optimization/);
  });

  it('artifact follow runs with the malloc setting and its V8 flags, in the same process (PID), with the same node flags', async () => {
    const rules = join(dir, 'rules2');
    const child = spawn(NODE, ['--max-semi-space-size=1', CLI, 'artifact', 'follow', ref, '--every', '1h', '--rulesfiles-dir', rules, '--state-dir', join(dir, 'state2'), '--plain-http', '--engine-version', '0.60.0'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const procFile = (name: string) => readFile(`/proc/${child.pid}/${name}`, 'latin1').then((t) => t.split('\0'), () => [] as string[]);
    try {
      // The re-exec replaces the program, not the process: same PID, so signals and exit codes still reach the parent.
      const deadline = Date.now() + 10_000;
      while (!(await procFile('environ')).includes('MALLOC_MMAP_THRESHOLD_=65536') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await procFile('environ')).toContain('MALLOC_MMAP_THRESHOLD_=65536');
      // Node's own flags (the shebang's, here one given by hand) survive the re-exec; the agent's V8
      // flags come on node's command line, so they hold from the program's first instruction.
      expect((await procFile('cmdline')).slice(1, 7)).toEqual(['--max-semi-space-size=1', ...LEAN_JIT_FLAGS, CLI]);
      // And the agent works: it installs the ref.
      while (!(await readFile(join(rules, 'flags_rules.yaml')).then(() => true, () => false)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await readFile(join(rules, 'flags_rules.yaml'), 'utf8')).toContain('rule: r');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).not.toContain('error');
  });
});
