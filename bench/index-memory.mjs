#!/usr/bin/env node
/**
 * Memory of reading a large index, as ratios to the index file's size: generates an index of
 * --entries small valid entries (default 79,000: about 9 MB, the size of the reliability issue's
 * report, near the 10 MiB cap), then runs `diginfractl index add bench FILE` (fetch, parse,
 * validate, cache) with a temp config and cache. Prints:
 * - the peak RSS of the CLI process, whole, over a bare `node -e ""`, and over the same command on a
 *   two-entry index (what the index itself adds);
 * - the memory the index holds: the largest heap still in use after a full collection (V8's
 *   `--trace-gc` "Mark-Compact A (B) -> C" lines, C), from one more run with that flag;
 * - the peak of `artifact search` right after (reads the cached copy).
 *
 *   npm run build && node bench/index-memory.mjs [--entries N] [--runs N] [--cli PATH] [--keep]
 *
 * Peak RSS comes from /usr/bin/time -f %M (GNU time, wait4's max RSS; Debian package `time`).
 * Targets (issue: reliability, restated in docs/benchmarks.md), printed as met/NOT met, never failing
 * the build: the heap held under 3x the file size ("a few times", the words), and the peak over the
 * two-entry run under 10x.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;
const TIME_BIN = '/usr/bin/time';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const ENTRIES = Number(arg('entries', '79000'));
const RUNS = Number(arg('runs', '3'));
const CLI = resolve(arg('cli', join(ROOT, 'dist/bin/diginfractl.cjs')));
const KEEP = process.argv.includes('--keep');
/** Held: the heap in use after a full collection, over the file size. */
const HELD_TARGET = 3;
/** Peak RSS over the same command on a two-entry index, over the file size. */
const PEAK_TARGET = 10;

if (!existsSync(CLI)) {
  console.error(`${CLI} is missing; run "npm run build" first`);
  process.exit(1);
}
if (!existsSync(TIME_BIN)) {
  console.error(`${TIME_BIN} is missing; it measures the peak RSS: apt-get install -y time`);
  process.exit(1);
}

const mb = (b) => `${(b / 1024 / 1024).toFixed(1)} MB`;

/** A valid index of `n` entries with the mandatory fields only (about 120 bytes each). */
function generateIndex(n) {
  const parts = [];
  for (let i = 0; i < n; i++) {
    const type = i % 2 === 0 ? 'plugin' : 'rulesfile';
    parts.push(`- name: e${i}\n  type: ${type}\n  registry: ghcr.io\n  repository: acme/e${i}\n  description: entry ${i}\n  keywords: [k${i % 100}]\n`);
  }
  return parts.join('');
}

/**
 * Runs `cmd args` to completion under GNU time: peak RSS (bytes, wait4's max RSS of the process),
 * seconds, and stderr. The CLI runs as the bin itself, as users and the image run it: through its
 * shebang (`env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --expose-gc`), Node 24 first on PATH.
 */
function measure(cmd, args, env, work) {
  const rssFile = join(work, 'rss');
  const t0 = process.hrtime.bigint();
  const r = spawnSync(TIME_BIN, ['-f', '%M', '-o', rssFile, cmd, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // GNU time writes "Command exited with non-zero status N" before the value on a failure.
  const kib = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  return { rss: kib * 1024, seconds, ok: r.status === 0, status: r.status ?? r.signal, stderr: (r.stderr ?? '').trim().slice(-4000) };
}

const work = mkdtempSync(join(tmpdir(), 'diginfractl-bench-index-'));
const env = {
  PATH: `${dirname(NODE)}:${process.env.PATH}`,
  HOME: work,
  XDG_CONFIG_HOME: join(work, '.config'),
  XDG_CACHE_HOME: join(work, '.cache'),
  DIGINFRACTL_CONFIG: join(work, 'diginfractl.yaml'),
};
const cleanup = () => {
  if (!KEEP) rmSync(work, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});

/** The largest heap left after a full collection, in bytes, from a run under --trace-gc (0 when none ran). */
function heldHeap(args, env) {
  const r = spawnSync(NODE, ['--max-semi-space-size=1', '--trace-gc', CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${args.join(' ')} under --trace-gc exited ${r.status}: ${r.stderr}`);
  const after = [...r.stdout.matchAll(/Mark-Compact[^>]*-> ([\d.]+) \(/g)].map((m) => Number(m[1]) * 1024 * 1024);
  return Math.max(0, ...after);
}

try {
  const indexPath = join(work, 'index.yaml');
  const smallPath = join(work, 'small.yaml');
  writeFileSync(indexPath, generateIndex(ENTRIES));
  writeFileSync(smallPath, generateIndex(2));
  const size = statSync(indexPath).size;
  console.log(`index: ${ENTRIES} entries, ${mb(size)}; peak RSS by /usr/bin/time -f %M; ${RUNS} runs, highest peak`);

  const rows = { node: [], small: [], add: [], search: [] };
  const fresh = () => {
    writeFileSync(env.DIGINFRACTL_CONFIG, 'indexes: []\n');
    rmSync(env.XDG_CACHE_HOME, { recursive: true, force: true });
  };
  for (let i = 0; i < RUNS; i++) {
    fresh();
    rows.node.push(measure(NODE, ['-e', ''], env, work));
    const small = measure(CLI, ['index', 'add', 'bench', smallPath], env, work);
    if (!small.ok) throw new Error(`index add (two entries) exited ${small.status}: ${small.stderr}`);
    rows.small.push(small);
    fresh();
    const add = measure(CLI, ['index', 'add', 'bench', indexPath], env, work);
    if (!add.ok) throw new Error(`index add exited ${add.status}: ${add.stderr}`);
    rows.add.push(add);
    const search = measure(CLI, ['artifact', 'search', 'k7'], env, work);
    if (!search.ok) throw new Error(`artifact search exited ${search.status}: ${search.stderr}`);
    rows.search.push(search);
  }
  const peak = (xs) => Math.max(...xs.map((r) => r.rss));
  const node = peak(rows.node);
  const line = (label, xs) => {
    const p = peak(xs);
    const secs = Math.min(...xs.map((r) => r.seconds));
    console.log(`${label.padEnd(34)} ${mb(p).padStart(9)}  ${(p / size).toFixed(2)}x the file, ${((p - node) / size).toFixed(2)}x over node  (${secs.toFixed(2)} s)`);
    return p;
  };
  console.log(`${'node -e ""'.padEnd(34)} ${mb(node).padStart(9)}`);
  const small = peak(rows.small);
  console.log(`${'diginfractl index add, 2 entries'.padEnd(34)} ${mb(small).padStart(9)}`);
  const add = line('diginfractl index add', rows.add);
  line('diginfractl artifact search (cache)', rows.search);
  fresh();
  const held = heldHeap(['index', 'add', 'bench', indexPath], env);
  const heldRatio = held / size;
  const peakRatio = (add - small) / size;
  console.log(`held: heap in use after a full collection, at most ${mb(held)}: ${heldRatio.toFixed(2)}x the file`);
  console.log(`target: heap held under ${HELD_TARGET}x the file size: ${heldRatio.toFixed(2)}x ${heldRatio < HELD_TARGET ? 'met' : 'NOT met'}`);
  console.log(`target: peak RSS over the two-entry run under ${PEAK_TARGET}x the file size: ${peakRatio.toFixed(2)}x ${peakRatio < PEAK_TARGET ? 'met' : 'NOT met'}`);
} finally {
  if (KEEP) console.log(`kept ${work}`);
  cleanup();
}
