#!/usr/bin/env node
/**
 * Pull benchmark (issue 2): a single-layer artifact of --size-mb (default 100) MB of random bytes in a
 * local registry (the test harness's docker-registry, plain HTTP on loopback), fetched --runs times
 * (default 3, interleaved, median reported) by
 *
 *   diginfractl repo pull REF --dest DIR --plain-http   the whole process: resolve, download, verify, extract
 *   curl -s -o FILE http://HOST/v2/<repo>/blobs/<digest>  the same layer blob: the baseline
 *   skopeo copy docker://REF oci:DIR:tag                 to an OCI layout, if skopeo is installed
 *
 * plus three context rows: curl then `sync FILE` (a crash-safe download, which diginfractl's fsync
 * before its rename makes it), the same work as diginfractl with native tools (curl | tee >(sha256sum)
 * | tar -xz, then sync), and diginfractl pulling a 1 KB artifact (its fixed cost); then diginfractl and
 * curl once more at twice the size, to show whether diginfractl's peak RSS grows with the layer.
 * Targets (printed with PASS/FAIL, never enforced): diginfractl within 1.2x of curl's wall time, and
 * its peak RSS under 100 MB (MiB) at every size. Exit code 0 whatever the numbers; 1 only when
 * diginfractl or curl could not run at all.
 *
 *   npm run build && node bench/pull.mjs [--size-mb 100] [--runs 3] [--no-double] [--rss-method time|proc] [--json]
 *                                        [--cli path/to/dist/bin/diginfractl.cjs]
 *
 * --cli benchmarks another build of the CLI (say, a scratch copy of dist/ with a change to try).
 * Peak RSS: with /usr/bin/time (Debian package `time`) every command runs under `time -f %M` (max RSS
 * of the process, from wait4's rusage); without it, or with --rss-method proc, /proc/PID/status VmHWM
 * of the child is polled every 5 ms (VmHWM is a high-water mark, so polling misses at most the last
 * few ms of growth). Each timed command starts after a `sync`, so no run pays for the previous run's
 * dirty pages. Needs `npm run build`, /usr/bin/docker-registry and curl; skopeo is optional.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NODE24 = join(ROOT, 'node_modules/.bin/node');

// The registry helper is TypeScript: it needs Node 24's type stripping. Under an older `node`, run
// this same script again with the project's Node 24.
if (Number(process.versions.node.split('.')[0]) < 24 && existsSync(NODE24)) {
  const r = spawnSync(NODE24, process.argv.slice(1), { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const NODE = existsSync(NODE24) ? NODE24 : process.execPath;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
// --cli: another build of the CLI (a scratch copy with a fix, say) in place of this repo's dist/.
const CLI = resolve(arg('cli', join(ROOT, 'dist/bin/diginfractl.cjs')));
const SIZE_MB = Number(arg('size-mb', '100'));
const RUNS = Number(arg('runs', '3'));
const DOUBLE = !process.argv.includes('--no-double');
const JSON_OUT = process.argv.includes('--json');
const TIME_BIN = '/usr/bin/time';
const RSS_METHOD = arg('rss-method', existsSync(TIME_BIN) ? 'time' : 'proc');
const TARGET_RATIO = 1.2;
const TARGET_RSS_MB = 100;
if (!(SIZE_MB > 0) || !(RUNS >= 1)) throw new Error('--size-mb and --runs must be positive numbers');
if (RSS_METHOD === 'time' && !existsSync(TIME_BIN)) throw new Error(`${TIME_BIN} is missing (apt-get install -y time), or use --rss-method proc`);

const which = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim() || undefined;
const log = (line) => process.stderr.write(`${line}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (!existsSync(CLI)) {
  console.error(`${CLI} is missing; run "npm run build" first`);
  process.exit(1);
}
const CURL = which('curl');
const SKOPEO = which('skopeo');
const BASH = which('bash');
if (!CURL) {
  console.error('curl is missing (apt-get install -y curl)');
  process.exit(1);
}

/** `size` bytes from the CSPRNG, 1 MiB at a time (incompressible: gzip can only store it). */
async function randomFile(path, size) {
  const out = createWriteStream(path);
  for (let left = size; left > 0; left -= 1 << 20) {
    if (!out.write(randomBytes(Math.min(left, 1 << 20)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
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
 * Runs one command to completion after a `sync`; returns wall seconds (spawn to exit), peak RSS in
 * bytes, and the exit status and stderr tail. stdout is discarded.
 */
async function measure(cmd, args, env) {
  spawnSync('sync');
  const rssFile = join(work, `rss-${Math.random().toString(36).slice(2)}`);
  const [bin, argv] = RSS_METHOD === 'time' ? [TIME_BIN, ['-f', '%M', '-o', rssFile, cmd, ...args]] : [cmd, args];
  const t0 = process.hrtime.bigint();
  const child = spawn(bin, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((r) => child.once('close', (code, signal) => r({ code, signal, t: process.hrtime.bigint() })));
  const hwm = RSS_METHOD === 'proc' ? pollHwm(child.pid, exited) : undefined;
  const { code, signal, t } = await exited;
  const seconds = Number(t - t0) / 1e9;
  let rss = NaN;
  if (hwm) rss = await hwm;
  else {
    // GNU time appends "Command exited with non-zero status N" before the value on a failure.
    const text = await readFile(rssFile, 'utf8').catch(() => '');
    const last = text.trim().split('\n').pop();
    rss = /^\d+$/.test(last ?? '') ? Number(last) * 1024 : NaN;
    await rm(rssFile, { force: true });
  }
  return { seconds, rss, ok: code === 0, status: code ?? signal, stderr: stderr.trim() };
}

function mustSucceed(what, r) {
  if (!r.ok) throw new Error(`${what} failed (exit ${r.status}): ${r.stderr.split('\n').slice(-3).join(' | ')}`);
  return r;
}

let reg;
let work;
let cleaned = false;
function cleanupSync() {
  if (cleaned) return;
  cleaned = true;
  // The registry helper kills its registries and removes their dirs on 'exit' itself.
  if (work) rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

try {
  work = await mkdtemp(join(tmpdir(), 'diginfractl-bench-pull-'));
  const { startRegistry } = await import('../test/helpers/registry.ts');
  reg = await startRegistry();
  // A private HOME/XDG/config: nothing of the real user's credentials or config is read or written.
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DIGINFRACTL_') && !k.startsWith('XDG_'))),
    HOME: join(work, 'home'),
    XDG_CONFIG_HOME: join(work, 'home/.config'),
    XDG_CACHE_HOME: join(work, 'home/.cache'),
    DIGINFRACTL_CONFIG: join(work, 'home/diginfractl.yaml'),
    // The CLI runs as users run it, through its shebang (`env -S node ...`): Node 24 first on PATH.
    PATH: `${dirname(NODE)}:${process.env.PATH}`,
  };
  mkdirSync(env.XDG_CONFIG_HOME, { recursive: true });

  /** Pushes SIZE MB of random bytes as tag `tag`; returns the reference and the layer descriptor. */
  async function prepare(tag, sizeMb) {
    const file = join(work, `big-${tag}.bin`);
    log(`generating ${sizeMb >= 1 ? `${sizeMb} MB` : `${Math.round(sizeMb * 1024)} KB`} of random data and pushing it as ${reg.host}/bench/big:${tag} ...`);
    await randomFile(file, Math.round(sizeMb * 1024 * 1024));
    const ref = `${reg.host}/bench/big:${tag}`;
    const push = spawnSync(NODE, [CLI, 'repo', 'push', ref, file, '--type', 'asset', '--version', tag, '--plain-http', '-o', 'json'], { env, encoding: 'utf8' });
    if (push.status !== 0) throw new Error(`push failed: ${push.stderr}`);
    rmSync(file);
    const res = await fetch(`${reg.url}/v2/bench/big/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    if (!res.ok) throw new Error(`manifest GET: HTTP ${res.status}`);
    const manifest = await res.json();
    if (manifest.layers?.length !== 1) throw new Error(`expected one layer, got ${manifest.layers?.length}`);
    return { ref, layer: manifest.layers[0], bytes: Math.round(sizeMb * 1024 * 1024) };
  }

  /**
   * What is timed, per run and in this order. `target`: diginfractl against the `baseline`, curl. The
   * rest is context: skopeo (another registry client), the same work as diginfractl done by native
   * tools (download, sha256, gunzip+untar, fsync), and diginfractl on a 1 KB artifact (its fixed cost:
   * start-up, manifest and config requests, exit).
   */
  const blobUrl = (a) => `${reg.url}/v2/bench/big/blobs/${a.layer.digest}`;
  const sh = (text) => `'${text.replace(/'/g, `'\\''`)}'`;
  const pulled = (a, out) => {
    const files = readdirSync(out).filter((f) => !f.startsWith('.'));
    if (files.length !== 1 || statSync(join(out, files[0])).size !== a.bytes) throw new Error(`expected one ${a.bytes}-byte file in ${out}, found: ${files.join(', ')}`);
  };
  const tools = {
    diginfractl: {
      artifact: 'base',
      command: (a, out) => [CLI, ['repo', 'pull', a.ref, '--dest', out, '--plain-http']],
      verify: pulled,
    },
    curl: {
      artifact: 'base',
      command: (a, out) => [CURL, ['-s', '-f', '-o', out, blobUrl(a)]],
      verify: (a, out) => {
        if (statSync(out).size !== a.layer.size) throw new Error(`curl wrote ${statSync(out).size} bytes, expected ${a.layer.size}`);
      },
    },
    // Context: what a crash-safe download costs here. diginfractl fsyncs what it extracts before the
    // rename (the project's rule for every write); curl does not, and this disk writes back far slower
    // than loopback delivers.
    ...(BASH && {
      'curl+sync (durable)': {
        artifact: 'base',
        command: (a, out) => [BASH, ['-c', `${sh(CURL)} -s -f -o ${sh(out)} ${sh(blobUrl(a))} && sync ${sh(out)}`]],
        verify: (a, out) => {
          if (statSync(out).size !== a.layer.size) throw new Error(`curl wrote ${statSync(out).size} bytes, expected ${a.layer.size}`);
        },
      },
    }),
    ...(SKOPEO && {
      skopeo: {
        artifact: 'base',
        command: (a, out) => [SKOPEO, ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', `docker://${a.ref}`, `oci:${out}:tag`]],
        verify: (a, out) => {
          if (statSync(join(out, 'blobs', ...a.layer.digest.split(':'))).size !== a.layer.size) throw new Error(`skopeo's layout lacks ${a.layer.digest}`);
        },
      },
    }),
    ...(BASH && {
    'curl|sha256sum|tar+sync': {
      artifact: 'base',
      command: (a, out) => [
        BASH,
        ['-c', `set -o pipefail; mkdir -p ${sh(out)} && ${sh(CURL)} -sf ${sh(blobUrl(a))} | tee >(sha256sum > ${sh(`${out}.sum`)}) | tar -xzf - -C ${sh(out)}; rc=$?; wait $!; sync ${sh(out)}/*; exit $rc`],
      ],
      verify: (a, out) => {
        pulled(a, out);
        const sum = readFileSync(`${out}.sum`, 'utf8').split(' ')[0];
        rmSync(`${out}.sum`);
        if (`sha256:${sum}` !== a.layer.digest) throw new Error(`native pipeline digest ${sum} is not ${a.layer.digest}`);
      },
    },
    }),
    'diginfractl 1KB': {
      artifact: 'tiny',
      command: (a, out) => [CLI, ['repo', 'pull', a.ref, '--dest', out, '--plain-http']],
      verify: pulled,
    },
  };

  const artifacts = { base: await prepare('1.0.0', SIZE_MB), tiny: await prepare('0.0.1', 1 / 1024) };
  const base = artifacts.base;
  const results = Object.fromEntries(Object.keys(tools).map((t) => [t, { seconds: [], rss: [], error: undefined }]));
  for (let run = 1; run <= RUNS; run++) {
    for (const [tool, spec] of Object.entries(tools)) {
      const r = results[tool];
      if (r.error) continue;
      const a = artifacts[spec.artifact];
      const out = join(work, `out-${Object.keys(tools).indexOf(tool)}`);
      rmSync(out, { recursive: true, force: true });
      const [cmd, args] = spec.command(a, out);
      const m = await measure(cmd, args, env);
      if (!m.ok) {
        r.error = `exit ${m.status}: ${m.stderr.split('\n').slice(-2).join(' | ')}`;
        log(`  ${tool} failed, not timed further: ${r.error}`);
      } else {
        spec.verify(a, out);
        r.seconds.push(m.seconds);
        r.rss.push(m.rss);
        log(`  run ${run}/${RUNS} ${tool.padEnd(24)} ${m.seconds.toFixed(3)} s  peak RSS ${(m.rss / 1048576).toFixed(1)} MB`);
      }
      rmSync(out, { recursive: true, force: true });
    }
  }
  if (!SKOPEO) results.skopeo = { seconds: [], rss: [], error: 'skopeo is not installed (apt-get install -y skopeo)' };

  let double;
  if (DOUBLE) {
    const big = await prepare('2.0.0', SIZE_MB * 2);
    const out = join(work, 'out-double');
    const [cmd, args] = tools.diginfractl.command(big, out);
    const m = mustSucceed('diginfractl pull at 2x', await measure(cmd, args, env));
    tools.diginfractl.verify(big, out);
    rmSync(out, { recursive: true, force: true });
    const [ccmd, cargs] = tools.curl.command(big, out);
    const c = mustSucceed('curl at 2x', await measure(ccmd, cargs, env));
    tools.curl.verify(big, out);
    rmSync(out, { force: true });
    double = { seconds: m.seconds, rss: m.rss, curlSeconds: c.seconds };
    log(`  2x (${SIZE_MB * 2} MB): diginfractl ${m.seconds.toFixed(3)} s, peak RSS ${(m.rss / 1048576).toFixed(1)} MB; curl ${c.seconds.toFixed(3)} s`);
  }

  // ---------------------------------------------------------------- report
  const mb = (b) => `${(b / 1048576).toFixed(1)} MB`;
  const curlMedian = median(results.curl.seconds);
  const summary = {};
  const W = 26;
  if (CLI !== join(ROOT, 'dist/bin/diginfractl.cjs')) console.log(`\ndiginfractl = ${CLI}`);
  console.log(`\npull of a ${SIZE_MB} MB single-layer artifact (layer ${mb(base.layer.size)} tar.gz), local registry over loopback; ${RUNS} runs, median`);
  console.log(`${'tool'.padEnd(W)}${'median s'.padStart(10)}${'vs curl'.padStart(10)}${'peak RSS'.padStart(12)}   runs (s)`);
  for (const [tool, r] of Object.entries(results)) {
    if (r.error) {
      console.log(`${tool.padEnd(W)}${'-'.padStart(10)}${'-'.padStart(10)}${'-'.padStart(12)}   could not run: ${r.error}`);
      summary[tool] = { error: r.error };
      continue;
    }
    const s = median(r.seconds);
    const rss = Math.max(...r.rss);
    summary[tool] = { medianSeconds: s, ratioVsCurl: s / curlMedian, peakRssBytes: rss, runs: r.seconds };
    console.log(`${tool.padEnd(W)}${s.toFixed(3).padStart(10)}${`${(s / curlMedian).toFixed(2)}x`.padStart(10)}${mb(rss).padStart(12)}   ${r.seconds.map((x) => x.toFixed(2)).join(' ')}`);
  }
  console.log(`\npeak RSS measured with ${RSS_METHOD === 'time' ? '/usr/bin/time -f %M' : '/proc/PID/status VmHWM polling'}`);
  if (summary.diginfractl.error || summary.curl.error) {
    // Not a missed target: the benchmark itself could not measure.
    console.log('targets not evaluated: diginfractl or curl could not run');
    process.exitCode = 1;
  } else {
    const ratio = summary.diginfractl.medianSeconds / curlMedian;
    const peak = Math.max(summary.diginfractl.peakRssBytes, double?.rss ?? 0);
    const verdict = (ok) => (ok ? 'PASS' : 'FAIL');
    if (double) {
      console.log(`diginfractl at 2x (${SIZE_MB * 2} MB): ${double.seconds.toFixed(3)} s (curl ${double.curlSeconds.toFixed(3)} s, ${(double.seconds / double.curlSeconds).toFixed(2)}x), peak RSS ${mb(double.rss)} (vs ${mb(summary.diginfractl.peakRssBytes)} at ${SIZE_MB} MB)`);
    }
    console.log(`target wall time <= ${TARGET_RATIO}x curl: ${ratio.toFixed(2)}x  ${verdict(ratio <= TARGET_RATIO)}`);
    console.log(`target peak RSS < ${TARGET_RSS_MB} MB at every size: ${mb(peak)}  ${verdict(peak < TARGET_RSS_MB * 1048576)}`);
    for (const other of ['curl+sync (durable)', 'skopeo']) {
      const o = summary[other];
      if (o?.medianSeconds) console.log(`context: diginfractl vs ${other}: ${(summary.diginfractl.medianSeconds / o.medianSeconds).toFixed(2)}x`);
    }
    if (JSON_OUT) {
      console.log(JSON.stringify({ sizeMb: SIZE_MB, layerBytes: base.layer.size, runs: RUNS, rssMethod: RSS_METHOD, tools: summary, double, targets: { ratio, ratioPass: ratio <= TARGET_RATIO, peakRssBytes: peak, rssPass: peak < TARGET_RSS_MB * 1048576 } }));
    }
  }
} finally {
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
  cleaned = true;
}
