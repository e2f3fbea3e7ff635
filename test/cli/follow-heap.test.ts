/**
 * The follow agent's periodic full GC (src/cli/actions/artifact-follow.ts): every 30 s, never keeping
 * the process alive, and harmless where `gc` is not exposed (the agent's re-exec exposes it:
 * src/cli/process-tuning.ts; test/cli/process-tuning.test.ts checks it in the running agent).
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compactHeapPeriodically, HEAP_COMPACT_EVERY_MS } from '../../src/cli/actions/artifact-follow.js';
import { FOLLOW_NODE_FLAGS } from '../../src/cli/process-tuning.js';
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

  it('only the agent exposes gc; every command keeps the 1 MB young generation through the shebang', () => {
    const shebang = readFileSync(CLI, 'utf8').split('\n')[0]!;
    expect(shebang).toBe('#!/usr/bin/env -S node --max-semi-space-size=1');
    expect(FOLLOW_NODE_FLAGS).toEqual(expect.arrayContaining(['--expose-gc', '--max-semi-space-size=1']));
  });
});
