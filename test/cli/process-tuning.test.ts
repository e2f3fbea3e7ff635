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
import { FOLLOW_MALLOC_ENV, FOLLOW_NODE_FLAGS, LEAN_JIT_FLAGS, WASM_BASELINE_FLAGS, childExecArgv, reexecFor, v8FlagsFor, whyExecWouldFail } from '../../src/cli/process-tuning.js';
import { CLI, NODE, ROOT, cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { httpGet, metricValue, scrape, startAgent, waitFor } from '../follow/setup.js';

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

  it("only artifact follow re-executes itself, with its node flags on node's command line and its malloc settings", () => {
    // The agent's settings; the bin's shebang gives every command the young generation only.
    expect(FOLLOW_MALLOC_ENV).toEqual({ MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '65536' });
    expect(FOLLOW_NODE_FLAGS).toEqual(['--expose-gc', '--max-semi-space-size=1', ...LEAN_JIT_FLAGS]);
    const shebang = ['--max-semi-space-size=1'];
    expect(reexecFor(argv('artifact', 'follow', 'x'), shebang, { PATH: '/bin' })).toEqual({
      execArgv: [...shebang, '--expose-gc', ...LEAN_JIT_FLAGS],
      env: { PATH: '/bin', MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '65536' },
    });
    expect(reexecFor(argv('--log-level', 'debug', 'artifact', 'follow'), [], {})).toEqual({ execArgv: [...FOLLOW_NODE_FLAGS], env: { ...FOLLOW_MALLOC_ENV } });
    // The user's malloc value stands; only the missing flags are added.
    expect(reexecFor(argv('artifact', 'follow', 'x'), ['--no-maglev'], { MALLOC_MMAP_THRESHOLD_: '131072' })).toEqual({
      execArgv: ['--no-maglev', '--expose-gc', '--max-semi-space-size=1', '--no-turbofan', '--no-wasm-dynamic-tiering', '--no-wasm-tier-up'],
      env: { MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_ARENA_MAX: '1' },
    });
    // Once re-executed (or started so by the user), never again: no loop.
    const after = reexecFor(argv('artifact', 'follow', 'x'), shebang, {})!;
    expect(reexecFor(argv('artifact', 'follow', 'x'), after.execArgv, after.env)).toBeUndefined();
    for (const args of [['repo', 'pull', 'x'], ['artifact', 'install', 'follow'], ['--help'], []]) {
      expect(reexecFor(argv(...args), [], {}), args.join(' ')).toBeUndefined();
    }
  });

  it("a V8 option the user set, either way, in node's options or NODE_OPTIONS, stands", () => {
    const env = { ...FOLLOW_MALLOC_ENV, NODE_OPTIONS: '--max-old-space-size=64 --no-expose-gc' };
    expect(reexecFor(argv('artifact', 'follow', 'x'), ['--max_semi_space_size=4', '--turbofan'], env)).toEqual({
      execArgv: ['--max_semi_space_size=4', '--turbofan', '--no-maglev', '--no-wasm-dynamic-tiering', '--no-wasm-tier-up'],
      env,
    });
    expect(reexecFor(argv('artifact', 'follow', 'x'), ['--no-expose-gc', '--max-semi-space-size=2', '--maglev', '--turbofan', '--wasm-dynamic-tiering', '--wasm-tier-up'], env)).toBeUndefined();
  });

  it('a re-exec is made only when the same exec, run first with --version, works', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'process-tuning-exec-'));
    const garbage = join(dir, 'not-a-program');
    await writeFile(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), { mode: 0o755 });
    const script = [CLI, 'artifact', 'follow', 'x'];
    expect(whyExecWouldFail(process.execPath, [...FOLLOW_NODE_FLAGS], script, { ...process.env, ...FOLLOW_MALLOC_ENV })).toBeUndefined();
    // An executable file that execve(2) refuses (or that /bin/sh then runs): no re-exec, which would abort.
    expect(whyExecWouldFail(garbage, [...FOLLOW_NODE_FLAGS], script, process.env)).toBeTypeOf('string');
    expect(whyExecWouldFail(process.execPath, ['--no-such-v8-flag'], script, process.env)).toMatch(/bad option/);
    expect(whyExecWouldFail('node', [], script, process.env)).toBe('not an absolute path to a file');
    expect(whyExecWouldFail(join(dir, 'missing'), [], script, process.env)).toBe('ENOENT');
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

  it('artifact follow runs with its malloc settings and node flags, in the same process (PID), with the same node flags', async () => {
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
      expect(await procFile('environ')).toEqual(expect.arrayContaining(['MALLOC_MMAP_THRESHOLD_=65536', 'MALLOC_ARENA_MAX=1']));
      // Node's own flags (the shebang's, here given by hand) survive the re-exec; the agent's flags
      // come on node's command line, so they hold from the program's first instruction.
      expect((await procFile('cmdline')).slice(1, 8)).toEqual(['--max-semi-space-size=1', '--expose-gc', ...LEAN_JIT_FLAGS, CLI]);
      // And the agent works: it installs the ref.
      while (!(await readFile(join(rules, 'flags_rules.yaml')).then(() => true, () => false)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await readFile(join(rules, 'flags_rules.yaml'), 'utf8')).toContain('rule: r');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).not.toContain('error');
  });

  it('artifact follow whose re-exec would fail keeps running without its settings, and serves /healthz', async () => {
    // process.execPath points at an executable file that execve(2) refuses (ENOEXEC): it passes every
    // check on the path itself, and a real process.execve of it aborts Node 24.
    const notAProgram = join(dir, 'not-a-program');
    await writeFile(notAProgram, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), { mode: 0o755 });
    const preload = join(dir, 'exec-path.cjs');
    await writeFile(preload, `process.execPath = ${JSON.stringify(notAProgram)};\n`);
    const rules = join(dir, 'rules3');
    const agent = startAgent(
      [ref, '--every', '1h', '--rulesfiles-dir', rules, '--state-dir', join(dir, 'state3'), '--plain-http', '--engine-version', '0.60.0', '--metrics-addr', '127.0.0.1:0'],
      { ...env, NODE_OPTIONS: `--require=${preload}` },
    );
    try {
      const port = await agent.port();
      expect((await httpGet(port, '/healthz')).status).toBe(200);
      // It checks its ref (the rules check, a child node process, also runs process.execPath here, so
      // the new version is refused; what counts is that the agent lives on and says why).
      await waitFor('a check done', async () => metricValue(await scrape(port), 'diginfractl_follow_checks_total') >= 1);
      expect((await httpGet(port, '/healthz')).status).toBe(200);
      expect(agent.child.exitCode).toBeNull();
      // Not re-executed: neither the malloc settings nor the agent's flags.
      const environ = (await readFile(`/proc/${agent.child.pid}/environ`, 'latin1')).split('\0');
      expect(environ.filter((e) => e.startsWith('MALLOC_'))).toEqual([]);
      expect((await readFile(`/proc/${agent.child.pid}/cmdline`, 'latin1')).split('\0')).not.toContain('--expose-gc');
      expect(agent.stderr()).toContain('DIGINFRACTL_NO_TUNING');
    } finally {
      expect(await agent.stop()).toEqual({ code: 0, signal: null });
    }
  });
});
