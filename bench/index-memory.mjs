#!/usr/bin/env node
/**
 * Peak memory of reading a large index, as a ratio to the index file's size: generates an index of
 * --entries small valid entries (default 79,000: about 9 MB, the size of the reliability issue's
 * report), then runs `diginfractl index add bench FILE` (fetch, parse, validate, cache) with a temp
 * config and cache, and prints the CLI process's peak RSS, the same minus a bare `node -e ""`, and both
 * divided by the file size. Also the peak of `artifact search` right after (reads the cached copy).
 *
 *   npm run build && node bench/index-memory.mjs [--entries N] [--runs N] [--rss-method time|proc] [--cli PATH] [--keep]
 *
 * Peak RSS comes from /usr/bin/time -f %M (GNU time, wait4's max RSS) when it exists, else from
 * polling /proc/PID/status VmHWM every 5 ms. Target (issue: reliability): memory within a few times
 * the file size, printed as met/NOT met for "peak RSS over a bare node under 4x the file size" (node
 * alone is 4.5x a 9 MB file); it never fails the build.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
const RSS_METHOD = arg('rss-method', existsSync(TIME_BIN) ? 'time' : 'proc');
const CLI = resolve(arg('cli', join(ROOT, 'dist/bin/diginfractl.cjs')));
const KEEP = process.argv.includes('--keep');
/** "A few times the file size". */
const TARGET_RATIO = 4;

if (!existsSync(CLI)) {
  console.error(`${CLI} is missing; run "npm run build" first`);
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

/** Peak VmHWM (bytes) of `pid`, polled until `done` resolves. */
async function pollHwm(pid, done) {
  let peak = 0;
  let finished = false;
  done.then(() => (finished = true));
  while (!finished) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // gone
    }
    await sleep(5);
  }
  return peak;
}

/**
 * Runs `cmd args` to completion: peak RSS (bytes), seconds, exit status and stderr tail. The CLI runs
 * as the bin itself, as users and the image run it: through its shebang (`env -S MALLOC_ARENA_MAX=1
 * node --max-semi-space-size=1 --expose-gc`), with Node 24 first on PATH.
 */
async function measure(cmd, args, env, work) {
  const rssFile = join(work, `rss-${Math.random().toString(36).slice(2)}`);
  const [bin, argv] = RSS_METHOD === 'time' ? [TIME_BIN, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args];
  const t0 = process.hrtime.bigint();
  const child = spawn(bin, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((r) => child.once('close', (code, signal) => r({ code, signal, t: process.hrtime.bigint() })));
  const hwm = RSS_METHOD === 'proc' ? pollHwm(child.pid, exited) : undefined;
  const { code, signal, t } = await exited;
  let rss = NaN;
  if (hwm) rss = await hwm;
  else {
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    const last = text.trim().split('\n').pop();
    rss = /^\d+$/.test(last ?? '') ? Number(last) * 1024 : NaN;
    await rm(rssFile, { force: true });
  }
  return { rss, seconds: Number(t - t0) / 1e9, ok: code === 0, status: code ?? signal, stderr: stderr.trim() };
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

try {
  const indexPath = join(work, 'index.yaml');
  writeFileSync(indexPath, generateIndex(ENTRIES));
  const size = statSync(indexPath).size;
  console.log(`index: ${ENTRIES} entries, ${mb(size)}; peak RSS by ${RSS_METHOD === 'time' ? '/usr/bin/time -f %M' : '/proc/PID/status VmHWM polling'}; ${RUNS} runs, highest peak`);

  const rows = { node: [], add: [], search: [] };
  for (let i = 0; i < RUNS; i++) {
    writeFileSync(env.DIGINFRACTL_CONFIG, 'indexes: []\n');
    rmSync(env.XDG_CACHE_HOME, { recursive: true, force: true });
    rows.node.push(await measure(NODE, ['-e', ''], env, work));
    const add = await measure(CLI, ['index', 'add', 'bench', indexPath], env, work);
    if (!add.ok) throw new Error(`index add exited ${add.status}: ${add.stderr}`);
    rows.add.push(add);
    const search = await measure(CLI, ['artifact', 'search', 'k7'], env, work);
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
  const add = line('diginfractl index add', rows.add);
  line('diginfractl artifact search (cache)', rows.search);
  const ratio = (add - node) / size;
  console.log(`target: index add peak RSS over node under ${TARGET_RATIO}x the file size: ${ratio.toFixed(2)}x ${ratio < TARGET_RATIO ? 'met' : 'NOT met'}`);
} finally {
  if (KEEP) console.log(`kept ${work}`);
  cleanup();
}
