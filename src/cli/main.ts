#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --expose-gc
/**
 * Entry point: tunes this process for the command (process-tuning.ts: `artifact follow` re-executes
 * itself once with its malloc settings; every command sets its V8 flags) and turns on V8's on-disk
 * compile cache before any other module loads (it cuts the start-up cost of commander and our own
 * modules on later runs), then runs the program.
 * The shebang sets what only a process's start can (docs/benchmarks.md has the measurements):
 * - a 1 MB young generation, so V8 collects streamed network buffers promptly: with the default, a
 *   pull's RSS grows with the layer size before the first scavenge (bench/pull.mjs);
 * - one glibc malloc arena, so memory freed by the thread pool's threads is reused rather than kept
 *   in an arena per thread: with the mmap setting `follow` adds for itself, -17 MB of idle RSS for
 *   the long-running agent (bench/follow-rss.mjs);
 * - `gc()` exposed, which only `artifact follow` calls, every 30 s, so its idle heap does not creep up.
 */
import './node-version.js';
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { enableCompileCache } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { reexecFor, v8FlagsFor } from './process-tuning.js';

const reexec = reexecFor(process.argv, process.execArgv, process.env);
if (reexec && typeof process.execve === 'function' && canExec(process.execPath)) {
  try {
    // Same PID, stdio and arguments; node's options are the shebang's (execArgv) plus the V8 flags; never returns.
    process.execve(process.execPath, [process.execPath, ...reexec.execArgv, ...process.argv.slice(1)], reexec.env);
  } catch {
    // Refused before the system call (see canExec): run without them (more idle memory, same behaviour).
  }
}
// At run time, for the commands that are not re-executed (and as a fallback for follow).
for (const flag of v8FlagsFor(process.argv)) setFlagsFromString(flag);

/**
 * Node 24 aborts the process when execve(2) fails, rather than throwing (the catch above only sees
 * argument errors): this check is what keeps the agent alive, so only an absolute path to an
 * executable regular file is tried. Without /proc (a bare chroot), process.execPath is just "node".
 */
function canExec(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return isAbsolute(path) && statSync(path).isFile();
  } catch {
    return false;
  }
}

try {
  enableCompileCache();
} catch {
  // A read-only or missing cache dir only costs speed.
}
// No top-level await: the shipped bin is this module bundled as CommonJS (scripts/bundle.mjs).
void import('./program.js');
