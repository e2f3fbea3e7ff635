/**
 * What the reliability tests share: a sandboxed "node" for the built CLI (its own XDG dirs and a
 * config file naming the registry as plain HTTP), and looks at a directory the way a user would.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { packLayer } from '../../src/artifact/archive.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { push, pushClient, pushFiles } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

export interface Node {
  env: NodeJS.ProcessEnv & { HOME: string };
  rules: string;
  plugins: string;
  /** Where `repo pull --dest` writes in these tests. */
  pulled: string;
  config: string;
}

/** A node whose config trusts `hosts` over plain HTTP, with `extra` merged into the config file. */
export async function node(hosts: readonly string[], extra: Record<string, unknown> = {}): Promise<Node> {
  const env = await cliEnv();
  const rules = join(env.HOME, 'etc/diginfra');
  const plugins = join(env.HOME, 'plugins');
  const { registry, install, ...rest } = extra as { registry?: Record<string, unknown>; install?: Record<string, unknown> };
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({
      indexes: [],
      registry: { plainHttp: [...hosts], ...registry },
      install: { rulesfilesDir: rules, pluginsDir: plugins, ...install },
      ...rest,
    }),
  );
  return { env, rules, plugins, pulled: join(env.HOME, 'pulled'), config: env.DIGINFRACTL_CONFIG! };
}

/** Names in `dir` (none when it does not exist), sorted. */
export async function namesIn(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/** Dot-named leftovers of diginfractl in `dir`: staging dirs, temp files, intent records, locks. */
export async function leftoversIn(dir: string): Promise<string[]> {
  return (await namesIn(dir)).filter((n) => n.startsWith('.'));
}

/** Pushes `files` (name -> content) packed into ONE .tar.gz layer, as rules file artifact `name` at `version`, tagged `ref`. */
export async function pushOneLayer(client: RegistryClient, ref: string, opts: { name: string; version: string; files: Record<string, string | Buffer> }): Promise<void> {
  const dir = await tempDir(`${opts.name}-`);
  const paths: string[] = [];
  for (const [file, content] of Object.entries(opts.files)) {
    await writeFile(join(dir, file), content);
    paths.push(join(dir, file));
  }
  const layer = join(dir, `${opts.name}.tar.gz`);
  await packLayer(paths, layer);
  await push(client, ref, { type: 'rulesfile', version: opts.version, name: opts.name, files: [layer] });
}

/** The state letter of a process (`T` when stopped), from /proc; undefined once it is gone. */
export async function processState(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

/** The artifact files in `dir` (what the engine would load) with their contents. */
export async function installedFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await readdir(dir)) if (name.endsWith('.yaml')) out[name] = await readFile(join(dir, name), 'utf8');
  return out;
}

export interface ProxiedArtifact {
  proxy: FaultProxy;
  /** The artifact's reference through the proxy. */
  ref: string;
  /** Its one layer, the blob the proxy's faults are aimed at. */
  layerDigest: string;
  close: () => Promise<void>;
}

/** A registry with the tests' fault proxy in front, holding `files` as the rules file `repository:1.0.0`. */
export async function proxiedArtifact(repository: string, files: Record<string, string>): Promise<ProxiedArtifact> {
  const reg = await startRegistry();
  const proxy = await startFaultProxy(reg);
  const client = pushClient();
  await pushFiles(client, `${reg.host}/${repository}:1.0.0`, '1.0.0', files);
  const manifest = await client.fetchManifest({ registry: reg.host, repository, tag: '1.0.0' });
  return {
    proxy,
    ref: `${proxy.host}/${repository}:1.0.0`,
    layerDigest: (manifest.json as { layers: { digest: string }[] }).layers[0]!.digest,
    close: async () => {
      await client.close();
      await proxy.close();
      await reg.stop();
    },
  };
}
