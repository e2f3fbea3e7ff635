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
import { FOLLOW_MALLOC_ENV, LEAN_JIT_FLAGS, WASM_BASELINE_FLAGS, reexecEnvFor, v8FlagsFor } from '../../src/cli/process-tuning.js';
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

  it('only artifact follow re-executes itself, with mmap for large blocks, unless that is set already', () => {
    expect(FOLLOW_MALLOC_ENV).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
    expect(reexecEnvFor(argv('artifact', 'follow', 'x'), { PATH: '/bin' })).toEqual({ PATH: '/bin', MALLOC_MMAP_THRESHOLD_: '65536' });
    expect(reexecEnvFor(argv('--log-level', 'debug', 'artifact', 'follow'), {})).toEqual({ MALLOC_MMAP_THRESHOLD_: '65536' });
    // Once re-executed (or set by the user), never again: no loop, and the user's value stands.
    expect(reexecEnvFor(argv('artifact', 'follow', 'x'), { MALLOC_MMAP_THRESHOLD_: '131072' })).toBeUndefined();
    for (const args of [['repo', 'pull', 'x'], ['artifact', 'install', 'follow'], ['--help'], []]) {
      expect(reexecEnvFor(argv(...args), {}), args.join(' ')).toBeUndefined();
    }
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

  it('artifact follow optimizes nothing, JavaScript or WebAssembly', async () => {
    const follow = await runTraced(
      ['--trace-opt', '--trace-wasm-compilation-times'],
      ['artifact', 'follow', ref, '--once', '--rulesfiles-dir', join(dir, 'rules'), '--state-dir', join(dir, 'state'), '--plain-http', '--engine-version', '0.60.0'],
      env,
    );
    expect(follow.stderr).not.toContain('error:');
    expect(follow.code).toBe(0);
    expect(follow.stdout).toMatch(/using Liftoff/);
    expect(follow.stdout).not.toMatch(/using TurboFan|target (MAGLEV|TURBOFAN)/);
  });

  it('artifact follow runs with the malloc setting, in the same process (PID), with the same node flags', async () => {
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
      // Node's own flags (the shebang's, here one given by hand) survive the re-exec.
      expect((await procFile('cmdline')).slice(1, 3)).toEqual(['--max-semi-space-size=1', CLI]);
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
