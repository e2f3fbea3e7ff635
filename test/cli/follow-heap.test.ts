/**
 * The follow agent's periodic full GC (src/cli/actions/artifact-follow.ts): every 30 s, never keeping
 * the process alive, and harmless where `gc` is not exposed (the bin's shebang exposes it).
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compactHeapPeriodically, HEAP_COMPACT_EVERY_MS } from '../../src/cli/actions/artifact-follow.js';
import { CLI } from '../helpers/cli.js';

describe('follow: periodic heap compaction', () => {
  const g = globalThis as { gc?: () => void };
  const saved = g.gc;
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    g.gc = saved;
  });

  it('collects the whole heap every 30 s, on a timer that does not keep the process alive', () => {
    const gc = vi.fn();
    g.gc = gc;
    const timer = compactHeapPeriodically();
    try {
      expect(HEAP_COMPACT_EVERY_MS).toBe(30_000);
      expect(timer.hasRef()).toBe(false);
      vi.advanceTimersByTime(29_999);
      expect(gc).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(gc).toHaveBeenCalledTimes(1);
      vi.advanceTimersByTime(60_000);
      expect(gc).toHaveBeenCalledTimes(3);
    } finally {
      clearInterval(timer);
    }
  });

  it('does nothing where Node runs without --expose-gc', () => {
    delete g.gc;
    const timer = compactHeapPeriodically();
    try {
      expect(() => vi.advanceTimersByTime(90_000)).not.toThrow();
    } finally {
      clearInterval(timer);
    }
  });

  it('the bin exposes gc (and keeps the 1 MB young generation) through its shebang', () => {
    const shebang = readFileSync(CLI, 'utf8').split('\n')[0]!;
    expect(shebang).toMatch(/^#!\/usr\/bin\/env -S .*\bnode\b.* --expose-gc\b/);
    expect(shebang).toContain('--max-semi-space-size=1');
  });
});
