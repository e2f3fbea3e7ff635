/**
 * Per-command V8 flags (src/cli/v8-flags.ts): which command gets which, and that they take effect in
 * the bin (V8 ignores some flags once it has started; these are set at run time, in src/cli/main.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEAN_JIT_FLAGS, WASM_BASELINE_FLAGS, v8FlagsFor } from '../../src/cli/v8-flags.js';
import { CLI, NODE, ROOT, cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const argv = (...args: string[]) => ['/usr/bin/node', '/app/dist/bin/diginfractl.cjs', ...args];

describe('per-command V8 flags', () => {
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
    dir = await mkdtemp(join(tmpdir(), 'v8-flags-'));
    const file = join(dir, 'flags_rules.yaml');
    await writeFile(file, '- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n');
    ref = `${reg.host}/rules/flags:1.0.0`;
    const push = await runCli(['repo', 'push', ref, file, '--type', 'rulesfile', '--version', '1.0.0', '--plain-http'], { env });
    expect(push.stderr).toBe('');
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('repo pull compiles undici's parser with Liftoff only: no TurboFan job for the process to wait for at exit', async () => {
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
});
