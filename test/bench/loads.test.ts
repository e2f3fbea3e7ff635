/**
 * The benchmarks (bench/*.mjs) run under plain Node, which strips TypeScript's types but resolves
 * imports as written: the test helpers they load must import each other by their .ts names. This
 * catches a helper that breaks them without running a benchmark.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { NODE, ROOT } from '../helpers/cli.js';

describe('the benchmarks load their test helpers', () => {
  it('test/helpers/registry.ts imports under plain Node (bench/pull.mjs, bench/follow-common.mjs)', () => {
    const out = execFileSync(NODE, ['-e', "import('./test/helpers/registry.ts').then((m) => console.log(typeof m.startRegistry))"], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out.trim()).toBe('function');
  });
});
