#!/usr/bin/env -S node --max-semi-space-size=1
/**
 * Entry point: tunes this process for its command (process-tuning.ts: every setting a command makes
 * for itself, and why) and turns on V8's on-disk compile cache before any other module loads (it cuts
 * the start-up cost of commander and our own modules on later runs), then runs the program.
 * The shebang gives every command the 1 MB young generation, which only a process's start can set
 * (process-tuning.ts says why); `node diginfractl.cjs` works the same without it.
 */
import './node-version.js';
import { enableCompileCache } from 'node:module';
import { tuneProcess } from './process-tuning.js';

tuneProcess();
try {
  enableCompileCache();
} catch {
  // A read-only or missing cache dir only costs speed.
}
// No top-level await: the shipped bin is this module bundled as CommonJS (scripts/bundle.mjs).
void import('./program.js');
