#!/usr/bin/env node
/**
 * Benchmark of `diginfractl artifact search`: generates a 10,000-entry index, configures it in a temp
 * config (temp XDG dirs, nothing of the real home is touched), then times N whole-process runs of
 * `diginfractl artifact search <kw>` against `node -e ""` (and `diginfractl --version`, the floor any
 * command pays for loading the CLI) in the same run, interleaved, and prints medians and the ratio.
 * The same search runs once more per round in a second home whose config also has the default index
 * ("diginfra") first, at a URL nothing answers (a loopback port nobody listens on, as an offline
 * machine sees its default index): its first fetch fails once, is remembered, and every later search
 * must cost no network wait.
 *
 *   npm run build && node bench/search.mjs [--runs N] [--entries N] [--keyword KW] [--cli PATH] [--check] [--keep]
 *
 * --check exits 1 when a search/node ratio is not under 2; --keep keeps (and prints) the temp home.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const RUNS = Number(arg('runs', '20'));
const ENTRIES = Number(arg('entries', '10000'));
const KEYWORD = arg('keyword', 'kubernetes');
const CHECK = process.argv.includes('--check');
const KEEP = process.argv.includes('--keep');
// --cli PATH: another build of the CLI (e.g. a scratch copy with a change to try).
const CLI = resolve(arg('cli', join(ROOT, 'dist/bin/diginfractl.cjs')));

if (!existsSync(CLI)) {
  console.error(`${CLI} is missing; run "npm run build" first`);
  process.exit(1);
}

// A deterministic pseudo-random index: names, keywords and descriptions drawn from a vocabulary of
// 24 domain words and 400 made-up ones, so a domain keyword matches about 2% of the entries, as a
// real search does.
const DOMAIN = ['kubernetes', 'audit', 'aws', 'cloudtrail', 'github', 'okta', 'json', 'kafka', 'container', 'network', 'syscall', 'security', 'monitoring', 'gcp', 'azure', 'docker', 'k8s', 'metrics', 'logs', 'events', 'threat', 'runtime', 'compliance', 'identity'];
const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vo', 'zi', 'pe', 'sa', 'do', 'ri', 'gu', 'fe', 'bo', 'ly'];
let seed = 42;
/** mulberry32: deterministic, good enough for test data. */
const rand = (n) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) % n;
};
const WORDS = [...DOMAIN];
while (WORDS.length < DOMAIN.length + 400) {
  const w = SYLLABLES[rand(16)] + SYLLABLES[rand(16)] + SYLLABLES[rand(16)];
  if (!WORDS.includes(w)) WORDS.push(w);
}
const pick = () => WORDS[rand(WORDS.length)];
let yaml = '';
for (let i = 0; i < ENTRIES; i++) {
  const type = rand(2) === 0 ? 'plugin' : 'rulesfile';
  const name = `${pick()}-${pick()}-${i}`;
  yaml += `- name: ${name}
  type: ${type}
  registry: ghcr.io
  repository: bench/${type}s/${name}
  description: Reads ${pick()} ${pick()} events and watches ${pick()} for ${pick()} threats
  home: https://example.com/${name}
  keywords:
    - ${pick()}
    - ${pick()}
    - ${pick()}
  license: Apache-2.0
  maintainers:
    - name: Bench Authors
      email: bench@example.com
  sources:
    - https://example.com/src/${name}
`;
}

const home = mkdtempSync(join(tmpdir(), 'diginfractl-bench-'));
const env = {
  PATH: process.env.PATH,
  HOME: home,
  XDG_CONFIG_HOME: join(home, '.config'),
  XDG_CACHE_HOME: join(home, '.cache'),
  DIGINFRACTL_CONFIG: join(home, 'diginfractl.yaml'),
};
const indexPath = join(home, 'index.yaml');
writeFileSync(indexPath, yaml);
writeFileSync(env.DIGINFRACTL_CONFIG, 'indexes: []\n');

/** A loopback port nothing listens on (bound a moment, then released): connections are refused. */
async function deadPort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}
// The second home: the unreachable default index first, then the same bench index.
const offlineHome = join(home, 'offline');
const offlineEnv = {
  ...env,
  HOME: offlineHome,
  XDG_CONFIG_HOME: join(offlineHome, '.config'),
  XDG_CACHE_HOME: join(offlineHome, '.cache'),
  DIGINFRACTL_CONFIG: join(offlineHome, 'diginfractl.yaml'),
};
const unreachableUrl = `http://127.0.0.1:${await deadPort()}/index.yaml`;

// `node CLI ...` (the same node binary as the baseline), or with { bin: true } the bin itself, as users
// run it: through its shebang (`env -S node --max-semi-space-size=1`), Node 24 first on PATH.
const binEnv = { ...env, PATH: `${dirname(NODE)}:${env.PATH}` };
function run(args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = opts.bin
    ? spawnSync(args[0], args.slice(1), { env: binEnv, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
    : spawnSync(NODE, args, { env: opts.env ?? env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) {
    console.error(`${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
    process.exit(1);
  }
  return { ms, stdout: r.stdout };
}

try {
  run([CLI, 'index', 'add', 'bench', indexPath]);
  const probe = run([CLI, 'artifact', 'search', KEYWORD]);
  const hits = probe.stdout.trim().split('\n').length - 1;
  // Offline: the default index configured first and never fetched; the bench index added after it.
  mkdirSync(offlineHome);
  writeFileSync(offlineEnv.DIGINFRACTL_CONFIG, `indexes:\n  - name: diginfra\n    url: ${unreachableUrl}\n`);
  run([CLI, 'index', 'add', 'bench', indexPath], { env: offlineEnv });
  // The first search pays the failed fetch (loading the HTTP client, a refused connection) once.
  const cold = run([CLI, 'artifact', 'search', KEYWORD], { env: offlineEnv });
  if (cold.stdout !== probe.stdout) {
    console.error('the search with an unreachable default index found other results than without it');
    process.exit(1);
  }

  const all = run([CLI, 'artifact', 'search']).stdout.trim().split('\n').length - 1;

  const samples = { node: [], version: [], search: [], bin: [], all: [], offline: [] };
  // Warm the page cache and the parsed-config memo, then interleave so drift hits all equally.
  for (let i = 0; i < 3; i++) {
    run(['-e', '']);
    run([CLI, '--version']);
    run([CLI, 'artifact', 'search', KEYWORD]);
  }
  for (let i = 0; i < RUNS; i++) {
    samples.node.push(run(['-e', '']).ms);
    samples.version.push(run([CLI, '--version']).ms);
    samples.search.push(run([CLI, 'artifact', 'search', KEYWORD]).ms);
    samples.bin.push(run([CLI, 'artifact', 'search', KEYWORD], { bin: true }).ms);
    samples.all.push(run([CLI, 'artifact', 'search']).ms);
    samples.offline.push(run([CLI, 'artifact', 'search', KEYWORD], { env: offlineEnv }).ms);
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const m = {
    node: median(samples.node),
    version: median(samples.version),
    search: median(samples.search),
    bin: median(samples.bin),
    all: median(samples.all),
    offline: median(samples.offline),
  };
  const ratio = m.search / m.node;
  const offlineRatio = m.offline / m.node;
  console.log(`index: ${ENTRIES} entries; "artifact search ${KEYWORD}" lists ${hits}; ${RUNS} runs each (median)`);
  console.log('node -e ""'.padEnd(37) + `${m.node.toFixed(1)} ms`);
  console.log('diginfractl --version (CLI floor)'.padEnd(37) + `${m.version.toFixed(1)} ms  (${(m.version / m.node).toFixed(2)}x node)`);
  console.log(`diginfractl artifact search ${KEYWORD}`.padEnd(37) + `${m.search.toFixed(1)} ms  (${ratio.toFixed(2)}x node, ${(m.search - m.version).toFixed(1)} ms over the floor)`);
  console.log(`  the same, run as the bin (shebang)`.padEnd(37) + `${m.bin.toFixed(1)} ms  (${(m.bin / m.node).toFixed(2)}x node)`);
  console.log(`diginfractl artifact search (all ${all})`.padEnd(37) + `${m.all.toFixed(1)} ms  (${(m.all / m.node).toFixed(2)}x node, printing every entry)`);
  console.log(`  with an unreachable default index`.padEnd(37) + `${m.offline.toFixed(1)} ms  (${offlineRatio.toFixed(2)}x node; its first run, which tried it: ${cold.ms.toFixed(1)} ms)`);
  console.log(`ratio search/node: ${ratio.toFixed(2)} (target < 2): ${ratio < 2 ? 'met' : 'NOT met'}; as the bin: ${(m.bin / m.node).toFixed(2)}`);
  console.log(`ratio search/node, unreachable default index: ${offlineRatio.toFixed(2)} (target < 2): ${offlineRatio < 2 ? 'met' : 'NOT met'}`);
  if (CHECK && (ratio >= 2 || offlineRatio >= 2)) process.exitCode = 1;
} finally {
  if (KEEP) console.log(`kept ${home}`);
  else rmSync(home, { recursive: true, force: true });
}
