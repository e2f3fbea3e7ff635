import { describe, expect, it } from 'vitest';
import { LEAN_JIT_FLAGS, v8FlagsFor } from '../../src/cli/v8-flags.js';

const argv = (...args: string[]) => ['/usr/bin/node', '/app/dist/bin/diginfractl.cjs', ...args];

describe('per-command V8 flags', () => {
  it('artifact follow runs without the optimizing compilers, with or without global options first', () => {
    expect(v8FlagsFor(argv('artifact', 'follow', 'ghcr.io/x/y:1'))).toEqual(LEAN_JIT_FLAGS);
    expect(v8FlagsFor(argv('--config', '/etc/d.yaml', 'artifact', 'follow', '--once'))).toEqual(LEAN_JIT_FLAGS);
    expect(LEAN_JIT_FLAGS).toEqual(['--no-turbofan', '--no-maglev', '--no-wasm-tier-up']);
  });

  it('every other command keeps them (pulls and installs stream, hash and unpack large layers)', () => {
    for (const args of [['repo', 'pull', 'x'], ['artifact', 'install', 'follow'], ['artifact', 'search', 'follow'], ['--help'], []]) {
      expect(v8FlagsFor(argv(...args)), args.join(' ')).toEqual([]);
    }
  });
});
