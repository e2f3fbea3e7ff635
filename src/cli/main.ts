#!/usr/bin/env -S MALLOC_ARENA_MAX=1 MALLOC_MMAP_THRESHOLD_=65536 node --max-semi-space-size=1 --expose-gc
/**
 * Entry point: sets the command's own V8 flags (v8-flags.ts) and turns on V8's on-disk compile cache
 * before any other module loads (it cuts the start-up cost of commander and our own modules on later
 * runs), then runs the program.
 * The shebang sets what only a process's start can (docs/benchmarks.md has the measurements):
 * - a 1 MB young generation, so V8 collects streamed network buffers promptly: with the default, a
 *   pull's RSS grows with the layer size before the first scavenge (bench/pull.mjs);
 * - one glibc malloc arena, and mmap for blocks of 64 KiB and more (socket reads, worker heaps), so
 *   memory freed by short-lived threads and buffers goes back to the system: -17 MB idle RSS for the
 *   long-running `follow` agent (bench/follow-rss.mjs);
 * - `gc()` exposed, which only `artifact follow` calls, every 30 s, so its idle heap does not creep up.
 */
import { enableCompileCache } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { v8FlagsFor } from './v8-flags.js';

for (const flag of v8FlagsFor(process.argv)) setFlagsFromString(flag);

try {
  enableCompileCache();
} catch {
  // A read-only or missing cache dir only costs speed.
}
// No top-level await: the shipped bin is this module bundled as CommonJS (scripts/bundle.mjs).
void import('./program.js');
