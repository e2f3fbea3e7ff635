/**
 * The main job, end to end, on this machine: start a local OCI registry, publish a rules file and a
 * two-platform plugin, find them through an index, pull and install them, then follow the rules while
 * a new version is published and watch the file swap. Run with `npm run demo` (Node 24 runs this
 * TypeScript file directly).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry } from '../test/helpers/registry.ts';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/bin/diginfractl.cjs');
const RULES = join(ROOT, 'test/fixtures/falco_rules.yaml');

const work = await mkdtemp(join(tmpdir(), 'diginfractl-demo-'));
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DIGINFRACTL_') && !k.startsWith('XDG_'))),
  HOME: work,
  XDG_CONFIG_HOME: join(work, 'config'),
  XDG_CACHE_HOME: join(work, 'cache'),
  DOCKER_CONFIG: join(work, 'docker'),
  DIGINFRACTL_CONFIG: join(work, 'diginfractl.yaml'),
};

function step(title: string): void {
  process.stdout.write(`\n\x1b[1m== ${title}\x1b[0m\n`);
}

function cli(args: string[]): Promise<string> {
  process.stdout.write(`$ diginfractl ${args.join(' ')}\n`);
  return new Promise((resolvePromise, reject) => {
    execFile(process.execPath, [CLI, ...args], { env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      process.stdout.write(stdout);
      if (err) {
        process.stderr.write(stderr);
        reject(new Error(`diginfractl ${args[0]} ${args[1] ?? ''} failed (exit ${(err as { code?: unknown }).code})`));
      } else resolvePromise(stdout);
    });
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 12);
}

async function freePort(): Promise<number> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePromise(port));
    });
  });
}

const registry = await startRegistry();
const host = registry.host;
try {
  step(`a local OCI registry (CNCF distribution) on ${host}`);
  const rulesDir = join(work, 'etc/diginfra');
  const pluginsDir = join(work, 'usr/share/diginfra/plugins');
  const stateDir = join(work, 'var/lib/diginfractl');
  const indexFile = join(work, 'index.yaml');
  await writeFile(
    indexFile,
    [
      '- name: k8saudit-rules',
      '  type: rulesfile',
      `  registry: ${host}`,
      '  repository: demo/rules/k8saudit-rules',
      '  description: Detection rules for Kubernetes audit events',
      '  keywords: [kubernetes, audit, k8saudit]',
      '  license: Apache-2.0',
      '- name: k8saudit',
      '  type: plugin',
      `  registry: ${host}`,
      '  repository: demo/plugins/k8saudit',
      '  description: Reads Kubernetes audit events',
      '  keywords: [kubernetes, audit, plugin]',
      '  license: Apache-2.0',
      '',
    ].join('\n'),
  );
  // The publisher's key pair (cosign's ECDSA P-256; `cosign.pub` files work as they are).
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signingKey = join(work, 'signing.key.pem');
  const signingPub = join(work, 'signing.pub');
  await writeFile(signingKey, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(signingPub, keys.publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    [
      'indexes:',
      '  - name: demo',
      `    url: file://${indexFile}`,
      'registry:',
      `  plainHttp: ["${host}"]`,
      '  # install, pull and follow take only artifacts that this key signed (cosign format)',
      `  cosignKeys: ["${signingPub}"]`,
      'install:',
      `  rulesfilesDir: ${rulesDir}`,
      `  pluginsDir: ${pluginsDir}`,
      '  engineVersion: 0.58.0',
      'follow:',
      `  rulesfilesDir: ${rulesDir}`,
      `  pluginsDir: ${pluginsDir}`,
      `  stateDir: ${stateDir}`,
      '  engineVersion: 0.58.0',
      '',
    ].join('\n'),
  );

  step('publish a rules file (depends on the k8saudit plugin) and the plugin for two platforms, signed');
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  const amd64 = Buffer.from('\x7fELF fake k8saudit plugin for linux/amd64\n');
  const arm64 = Buffer.from('\x7fELF fake k8saudit plugin for linux/arm64\n');
  await mkdir(join(src, 'amd64'));
  await mkdir(join(src, 'arm64'));
  await writeFile(join(src, 'amd64/libk8saudit.so'), amd64);
  await writeFile(join(src, 'arm64/libk8saudit.so'), arm64);
  await cli(['repo', 'push', `${host}/demo/plugins/k8saudit`, join(src, 'amd64/libk8saudit.so'), join(src, 'arm64/libk8saudit.so'),
    '--type', 'plugin', '--version', '0.7.0', '--platform', 'linux/amd64', '--platform', 'linux/arm64', '--add-floating-tags', '--sign-key', signingKey]);
  const rulesV1 = join(src, 'k8saudit_rules.yaml');
  await writeFile(rulesV1, await readFile(RULES));
  await cli(['repo', 'push', `${host}/demo/rules/k8saudit-rules`, rulesV1,
    '--type', 'rulesfile', '--version', '0.1.0', '--depends-on', 'k8saudit:0.7.0', '--add-floating-tags', '--sign-key', signingKey]);

  step('pull them back');
  const pulled = join(work, 'pulled');
  await cli(['repo', 'pull', `${host}/demo/plugins/k8saudit:0.7.0`, '--dest', join(pulled, 'arm64'), '--platform', 'linux/arm64']);
  const got = await readFile(join(pulled, 'arm64/libk8saudit.so'));
  process.stdout.write(`linux/arm64 plugin bytes match what was pushed: ${got.equals(arm64)}\n`);
  await cli(['repo', 'pull', `${host}/demo/rules/k8saudit-rules:0.1.0`, '--dest', join(pulled, 'rules')]);

  step('find them through an index');
  await cli(['artifact', 'search', 'kubernetes', 'audit']);
  await cli(['artifact', 'info', 'k8saudit-rules']);

  step('install the rules by name: the plugin comes along as a dependency, for this machine\'s platform');
  await cli(['artifact', 'install', 'k8saudit-rules:0.1']);
  for (const dir of [rulesDir, pluginsDir]) {
    for (const f of (await readdir(dir)).filter((n) => !n.startsWith('.'))) {
      process.stdout.write(`  ${join(dir, f)}  sha256:${sha256(await readFile(join(dir, f)))}\n`);
    }
  }

  step('follow the rules: publish 0.2.0 and watch the file swap, with metrics on /metrics');
  const port = await freePort();
  const follower = spawn(process.execPath, [CLI, 'artifact', 'follow', `${host}/demo/rules/k8saudit-rules:0`,
    '--every', '1s', '--jitter', '0', '--metrics-addr', `127.0.0.1:${port}`, '--log-level', 'info'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const installed = join(rulesDir, 'k8saudit_rules.yaml');
  await sleep(2000);
  const rulesV2 = join(src, 'v2/k8saudit_rules.yaml');
  await mkdir(join(src, 'v2'));
  await writeFile(rulesV2, `${(await readFile(RULES, 'utf8'))}\n- list: demo_added_in_v2\n  items: [demo]\n`);
  await cli(['repo', 'push', `${host}/demo/rules/k8saudit-rules`, rulesV2, '--type', 'rulesfile', '--version', '0.2.0',
    '--depends-on', 'k8saudit:0.7.0', '--add-floating-tags', '--sign-key', signingKey]);
  const deadline = Date.now() + 15_000;
  let swapped = false;
  while (Date.now() < deadline && !swapped) {
    swapped = (await readFile(installed, 'utf8')).includes('demo_added_in_v2');
    if (!swapped) await sleep(200);
  }
  process.stdout.write(`rules file swapped to 0.2.0: ${swapped}\n`);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  process.stdout.write(`${metrics.split('\n').filter((l) => l.startsWith('diginfractl_follow_')).join('\n')}\n`);
  follower.kill('SIGTERM');
  await new Promise((r) => follower.once('exit', r));
  if (!swapped) throw new Error('the follower did not swap the rules file');

  step('what this node has now: installed by install, kept current by follow');
  await cli(['artifact', 'list']);

  step('done');
  process.stdout.write(`workspace: ${work}\n`);
} finally {
  await registry.stop();
  if (!process.env.DIGINFRACTL_DEMO_KEEP) await rm(work, { recursive: true, force: true });
}
