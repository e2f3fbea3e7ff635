/**
 * Shared by the follow benchmarks: a real registry (the test harness's, run by Node 24's type
 * stripping), N rules artifacts pushed to it, and the built CLI's `artifact follow` as a child process
 * with its /metrics scraped. Needs `npm run build` and /usr/bin/docker-registry (scripts/bootstrap.sh).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NODE = existsSync(join(ROOT, 'node_modules/.bin/node')) ? join(ROOT, 'node_modules/.bin/node') : process.execPath;

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

/** The bundled bin users run (npm's bin, the image's ENTRYPOINT); --cli PATH benchmarks another build. */
export const CLI = resolve(arg('cli', join(ROOT, 'dist/bin/diginfractl.cjs')));

/** `300`, `300s`, `5m`, `1h` -> milliseconds. */
export function durationMs(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'];
}

export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * `count` rules artifacts. With `floating: true`, every other one is published as `1.0.0` with the
 * floating tags (`repo push --add-floating-tags`: `1`, `1.0`, `latest`) and followed as `:1`; the
 * others are followed as `:stable`.
 */
export async function setup(count, opts = {}) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run "npm run build" first`);
  const { startRegistry } = await import('../test/helpers/registry.ts');
  const { pushArtifact } = await import('../dist/artifact/push.js');
  const { RegistryClient } = await import('../dist/registry/index.js');
  const { parseOciReference } = await import('../dist/reference/reference.js');
  const reg = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), 'diginfractl-bench-follow-'));
  const client = new RegistryClient({ hostSettings: () => ({ plainHttp: true }) });
  const rules = await readFile(join(ROOT, 'test/fixtures/falco_rules.yaml'));
  const refs = [];
  for (let i = 0; i < count; i++) {
    const file = join(work, `bench_${i}_rules.yaml`);
    await writeFile(file, Buffer.concat([rules, Buffer.from(`\n- list: bench_${i}\n  items: [x]\n`)]));
    const floating = opts.floating === true && i % 2 === 1;
    const repo = `${reg.host}/bench/rules-${i}`;
    await pushArtifact(client, parseOciReference(`${repo}:${floating ? '1.0.0' : 'stable'}`), { type: 'rulesfile', version: '1.0.0', files: [file], addFloatingTags: floating });
    refs.push(`${repo}:${floating ? '1' : 'stable'}`);
  }
  await client.close();
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DIGINFRACTL_') && !k.startsWith('XDG_'))),
    HOME: work,
    XDG_CONFIG_HOME: join(work, 'config'),
    XDG_CACHE_HOME: join(work, 'cache'),
    DIGINFRACTL_CONFIG: join(work, 'diginfractl.yaml'),
  };
  return { reg, work, refs, env };
}

/** Stops the agent and the registry on Ctrl-C / SIGTERM too (a bench killed midway leaves nothing). */
export function cleanupOnSignal(fn) {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      Promise.resolve(fn()).finally(() => process.exit(130));
    });
  }
}

export async function startFollow(ctx, extraArgs, opts = {}) {
  const port = await freePort();
  const args = ['artifact', 'follow', ...ctx.refs, '--plain-http', '--rulesfiles-dir', join(ctx.work, 'rules'), '--state-dir', join(ctx.work, 'state'), '--metrics-addr', `127.0.0.1:${port}`, '--log-level', 'warn', '--engine-version', '0.60.0', ...extraArgs];
  // As users run it: the bin through its shebang (`env -S node ...`), Node 24 first on PATH. With
  // opts.nodeArgs, `node FLAGS CLI` instead, to compare flags (a V8 option given there stands over the
  // agent's own settings; the shebang's young generation is then not applied).
  const env = { ...ctx.env, PATH: `${dirname(NODE)}:${process.env.PATH}`, ...opts.env };
  const child = opts.nodeArgs?.length
    ? spawn(NODE, [...opts.nodeArgs, CLI, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] })
    : spawn(CLI, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    port,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      return res.text();
    },
    async waitReady(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        try {
          if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return;
        } catch {
          // not listening yet
        }
        await sleep(100);
      }
      throw new Error('follow did not become ready');
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Sum of the samples of `name` whose labels include `labels`. */
export function metric(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** Resident set size of a process, from /proc (bytes). */
export async function rssOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** RSS split into anonymous memory (heap, malloc) and file pages (the node binary's code), bytes. */
export async function rssParts(pid) {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  const rss = kb('Rss');
  const anon = kb('Anonymous');
  return { rss, anon, file: rss - anon };
}
