/**
 * What the reliability tests share: a sandboxed "node" for the built CLI (its own XDG dirs and a
 * config file naming the registry as plain HTTP), and looks at a directory the way a user would.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { packLayer } from '../../src/artifact/archive.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { push } from '../helpers/push.js';

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
