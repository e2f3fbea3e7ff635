#!/usr/bin/env node
/**
 * Runs the benchmarks one after the other (what `npm run bench` does, after a build), each as its own
 * Node 24 process with its default arguments, and prints a summary. Benchmarks report; they do not
 * gate: a missed target is in a benchmark's output, and this exits non-zero only when a benchmark
 * could not run (crashed, or missing prerequisites).
 *
 *   npm run bench                          every benchmark listed below
 *   node bench/run.mjs pull search         only those (names from the list)
 *   node bench/run.mjs --list              the list
 *
 * Each benchmark also runs alone, with its own options: see the head of each file and bench/README.md.
 * A new benchmark goes into BENCHES (file, default args); files not listed are pointed out, not run.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;

/** name, file in bench/, default arguments. */
const BENCHES = [
  { name: 'pull', file: 'pull.mjs', args: [] },
  { name: 'search', file: 'search.mjs', args: [] },
  { name: 'follow-requests', file: 'follow-requests.mjs', args: [] },
  { name: 'follow-jitter', file: 'follow-jitter.mjs', args: [] },
  { name: 'follow-rss', file: 'follow-rss.mjs', args: [] },
  { name: 'fleet', file: 'fleet.mjs', args: [] },
  { name: 'index-memory', file: 'index-memory.mjs', args: [] },
];
/** Shared modules, not benchmarks. */
const HELPERS = new Set(['run.mjs', 'follow-common.mjs']);

const argv = process.argv.slice(2);
if (argv.includes('--list')) {
  for (const b of BENCHES) console.log(`${b.name.padEnd(18)} node bench/${b.file} ${b.args.join(' ')}`.trimEnd());
  process.exit(0);
}
const unknown = argv.filter((n) => !BENCHES.some((b) => b.name === n));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHES.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
const selected = BENCHES.filter((b) => (argv.length ? argv.includes(b.name) : true) && existsSync(join(HERE, b.file)));
const unlisted = readdirSync(HERE).filter((f) => f.endsWith('.mjs') && !HELPERS.has(f) && !BENCHES.some((b) => b.file === f));

const results = [];
for (const b of selected) {
  console.log(`\n=== ${b.name}: node bench/${b.file} ${b.args.join(' ')}`.trimEnd());
  const t0 = Date.now();
  const child = spawn(NODE, [join(HERE, b.file), ...b.args], { cwd: ROOT, stdio: 'inherit' });
  const status = await new Promise((r) => child.once('close', (code, signal) => r(code ?? signal)));
  results.push({ name: b.name, status, seconds: (Date.now() - t0) / 1000 });
}

console.log('\n=== summary');
for (const r of results) console.log(`${r.name.padEnd(18)} ${r.status === 0 ? 'ran' : `FAILED (exit ${r.status})`}  ${r.seconds.toFixed(0)} s`);
if (unlisted.length) console.log(`not in bench/run.mjs (run alone): ${unlisted.map((f) => `node bench/${f}`).join(', ')}`);
if (results.some((r) => r.status !== 0)) process.exitCode = 1;
